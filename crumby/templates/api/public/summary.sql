-- title: Summary
-- description: Visitors, page views, sessions (a visitor's views with gaps of at most
-- description: 30 minutes), the share of one-view sessions and their average length in seconds.
-- chart: kpi
-- order: 1
WITH v AS (
    SELECT v.id, v.cid, v.datetime,
           LAG(v.datetime) OVER (PARTITION BY v.cid ORDER BY v.datetime, v.id) AS prev
    FROM visits v
    WHERE v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
), marked AS (
    SELECT id, cid, datetime,
           CASE WHEN prev IS NULL OR {{ seconds_between("prev", "datetime") }} > 1800
                THEN 1 ELSE 0 END AS is_start
    FROM v
), numbered AS (
    SELECT cid, datetime,
           SUM(is_start) OVER (PARTITION BY cid ORDER BY datetime, id
                               ROWS UNBOUNDED PRECEDING) AS session_no
    FROM marked
), s AS (
    SELECT cid, session_no, COUNT(*) AS views,
           MIN(datetime) AS started, MAX(datetime) AS ended
    FROM numbered
    GROUP BY cid, session_no
)
SELECT (SELECT COUNT(DISTINCT cid) FROM v) AS visitors,
       (SELECT COUNT(*) FROM v) AS views,
       (SELECT COUNT(*) FROM s) AS sessions,
       COALESCE((SELECT {{ ratio("SUM(CASE WHEN views = 1 THEN 1 ELSE 0 END)", "COUNT(*)") }}
                 FROM s), 0) AS bounce_rate,
       COALESCE((SELECT AVG({{ seconds_between("started", "ended") }}) FROM s), 0) AS avg_duration
