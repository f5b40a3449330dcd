-- title: Sessions
-- description: Sessions per day (a visitor's views with gaps of at most 30 minutes, counted on
-- description: the day they start), the share that viewed one page, and their average length in seconds.
-- chart: line
-- order: 15
-- A view starts a session after a gap of over 30 minutes and ends one before such a gap;
-- each session is then read off its last view, which carries the session's start time.
WITH g AS (
    SELECT v.id, v.cid, v.datetime,
           {{ seconds_between("LAG(v.datetime) OVER (PARTITION BY v.cid ORDER BY v.datetime, v.id)", "v.datetime") }} AS gap_before,
           {{ seconds_between("v.datetime", "LEAD(v.datetime) OVER (PARTITION BY v.cid ORDER BY v.datetime, v.id)") }} AS gap_after
    FROM visits v
    WHERE v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
), marked AS (
    SELECT id, cid, datetime,
           CASE WHEN gap_before IS NULL OR gap_before > 1800 THEN 1 ELSE 0 END AS is_start,
           CASE WHEN gap_after IS NULL OR gap_after > 1800 THEN 1 ELSE 0 END AS is_end
    FROM g
), s AS (
    SELECT datetime, is_start, is_end,
           MAX(CASE WHEN is_start = 1 THEN datetime END)
               OVER (PARTITION BY cid ORDER BY datetime, id ROWS UNBOUNDED PRECEDING) AS started
    FROM marked
), d AS (
    SELECT {{ day("started") }} AS sday,
           COUNT(*) AS sessions,
           SUM(is_start) AS bounces,
           AVG({{ seconds_between("started", "datetime") }}) AS avg_duration
    FROM s
    WHERE is_end = 1
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
