-- title: Sessions
-- description: Sessions per day (a visitor's views with gaps of at most 30 minutes, counted on
-- description: the day they start), the share that viewed one page, and their average length in seconds.
-- chart: line
-- order: 15
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
), d AS (
    SELECT {{ day("started") }} AS sday,
           COUNT(*) AS sessions,
           SUM(CASE WHEN views = 1 THEN 1 ELSE 0 END) AS bounces,
           AVG({{ seconds_between("started", "ended") }}) AS avg_duration
    FROM s
    GROUP BY {{ day("started") }}
)
SELECT {{ day("c.datetime") }} AS date,
       COALESCE(d.sessions, 0) AS sessions,
       COALESCE({{ ratio("d.bounces", "d.sessions") }}, 0) AS bounce_rate,
       COALESCE(d.avg_duration, 0) AS avg_duration
FROM calendar c
LEFT JOIN d ON d.sday = {{ day("c.datetime") }}
WHERE c.datetime >= :t0 AND c.datetime < :t1_next
ORDER BY c.datetime
