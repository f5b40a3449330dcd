-- title: Summary
-- description: Visitors, page views, sessions (a visitor's views with gaps of at most
-- description: 30 minutes), the share of one-view sessions and their average length in seconds.
-- chart: kpi
-- order: 1
-- One pass: each view's gap to the visitor's previous and next view says whether it starts
-- or ends a session, and a session's length is the sum of the gaps inside it. A visitor's
-- first view in the range is the one without a previous view, which counts visitors
-- without a separate COUNT(DISTINCT).
WITH g AS (
    SELECT
           {{ seconds_between("LAG(v.datetime) OVER (PARTITION BY v.cid ORDER BY v.datetime, v.id)", "v.datetime") }} AS gap_before,
           {{ seconds_between("v.datetime", "LEAD(v.datetime) OVER (PARTITION BY v.cid ORDER BY v.datetime, v.id)") }} AS gap_after
    FROM visits v
    WHERE v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
), t AS (
    SELECT SUM(CASE WHEN gap_before IS NULL THEN 1 ELSE 0 END) AS visitors,
           COUNT(*) AS views,
           SUM(CASE WHEN gap_before IS NULL OR gap_before > 1800 THEN 1 ELSE 0 END) AS sessions,
           SUM(CASE WHEN (gap_before IS NULL OR gap_before > 1800)
                     AND (gap_after IS NULL OR gap_after > 1800) THEN 1 ELSE 0 END) AS bounces,
           SUM(CASE WHEN gap_before <= 1800 THEN gap_before ELSE 0 END) AS seconds
    FROM g
)
SELECT COALESCE(visitors, 0) AS visitors,
       views,
       COALESCE(sessions, 0) AS sessions,
       COALESCE({{ ratio("bounces", "sessions") }}, 0) AS bounce_rate,
       COALESCE({{ ratio("seconds", "sessions") }}, 0) AS avg_duration
FROM t
