-- title: Summary
-- description: Visitors, page views, sessions (a visitor's views with gaps of at most
-- description: 30 minutes, counted in the range they start in), the share of one-view
-- description: sessions and their average length in seconds.
-- chart: kpi
-- order: 1
-- Visitors and views count the range's views (with filters: the matching views), read
-- through visitor_rows(): from visitor days unless a page or session filter needs the views.
-- The session figures are sums over session_days, one row per local day sessions began and
-- combination of their entry's attributes (sessions, second views, seconds between views):
-- one-view sessions are sessions minus second views, the average length seconds / sessions.
-- A session belongs to the range it starts in. Filters pick whole sessions by their entry's
-- values (by="sessions": session_days has the entry_* columns of the views).
{% set rows = visitor_rows("v") %}
WITH t AS (
    SELECT COUNT(DISTINCT v.cid) AS visitors,
           {{ rows.views }} AS views
    FROM {{ rows }}
), s AS (
    SELECT SUM(s.sessions) AS sessions,
           SUM(s.continued) AS continued,
           SUM(s.seconds) AS seconds
    FROM session_days s
    WHERE s.site_id = :site_id AND s.day >= :d0 AND s.day <= :d1 {{ filters("s", by="sessions") }}
)
SELECT COALESCE(t.visitors, 0) AS visitors,
       COALESCE(t.views, 0) AS views,
       COALESCE(s.sessions, 0) AS sessions,
       COALESCE({{ ratio("s.sessions - s.continued", "s.sessions") }}, 0) AS bounce_rate,
       COALESCE({{ ratio("s.seconds", "s.sessions") }}, 0) AS avg_duration
FROM t CROSS JOIN s
