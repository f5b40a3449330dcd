-- title: Visits
-- description: Visitors (distinct visitor ids) and page views per day, including days without any.
-- chart: line
-- order: 10
-- parameters: interval
-- interval=day (the default) answers date, users, views per local day of the range;
-- hour, week and month answer the same per local hour (column hour, as hour() writes it),
-- per week (column week: its Monday) or per month (column month: its first day). Every
-- bucket of the range is listed, empty ones with 0; the first week or month may start
-- before the range and the last end after it, but only the range's visits are counted.
-- Days, weeks and months are read from visitor days (visitor_rows()) unless a page or
-- session filter needs the views; hours always from the views.
{% if interval == "hour" %}
SELECT b.hour AS hour,
       COALESCE(d.users, 0) AS users,
       COALESCE(d.views, 0) AS views
FROM ({{ hours() }}) b
LEFT JOIN (
    SELECT {{ hour("v.datetime") }} AS vhour,
           COUNT(DISTINCT v.cid) AS users,
           COUNT(*) AS views
    FROM visits v
    WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
    GROUP BY {{ hour("v.datetime") }}
) d ON d.vhour = b.hour
ORDER BY b.n
{% elif interval in ("week", "month") %}
{% set of = week if interval == "week" else month %}{% set part = week_part if interval == "week" else month_part %}
{% set rows = visitor_rows("v") %}{% set vbucket = part("v.day") if rows.folded else of("v.datetime") %}
SELECT b.{{ interval }} AS {{ interval }},
       COALESCE(d.users, 0) AS users,
       COALESCE(d.views, 0) AS views
FROM (
    SELECT DISTINCT {{ part("c.datetime") }} AS {{ interval }}
    FROM calendar c
    WHERE c.datetime >= :d0 AND c.datetime <= :d1
) b
LEFT JOIN (
    SELECT {{ vbucket }} AS vbucket,
           COUNT(DISTINCT v.cid) AS users,
           {{ rows.views }} AS views
    FROM {{ rows }}
    GROUP BY {{ vbucket }}
) d ON d.vbucket = b.{{ interval }}
ORDER BY b.{{ interval }}
{% else %}
{% set rows = visitor_rows("v") %}{% set vday = date_part("v.day") if rows.folded else day("v.datetime") %}
SELECT {{ date_part("c.datetime") }} AS date,
       COALESCE(d.users, 0) AS users,
       COALESCE(d.views, 0) AS views
FROM calendar c
LEFT JOIN (
    SELECT {{ vday }} AS vday,
           COUNT(DISTINCT v.cid) AS users,
           {{ rows.views }} AS views
    FROM {{ rows }}
    GROUP BY {{ vday }}
) d ON d.vday = {{ date_part("c.datetime") }}
WHERE c.datetime >= :d0 AND c.datetime <= :d1
ORDER BY c.datetime
{% endif %}
