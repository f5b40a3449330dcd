-- title: Visits
-- description: Visitors (distinct visitor ids) and page views per day, including days without any.
-- chart: line
-- order: 10
SELECT {{ date_part("c.datetime") }} AS date,
       COALESCE(d.users, 0) AS users,
       COALESCE(d.views, 0) AS views
FROM calendar c
LEFT JOIN (
    SELECT {{ day("v.datetime") }} AS vday,
           COUNT(DISTINCT v.cid) AS users,
           COUNT(*) AS views
    FROM visits v
    WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
    GROUP BY {{ day("v.datetime") }}
) d ON d.vday = {{ date_part("c.datetime") }}
WHERE c.datetime >= :d0 AND c.datetime <= :d1
ORDER BY c.datetime
