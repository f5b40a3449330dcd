-- title: Sessions
-- description: Sessions per day (a visitor's views with gaps of at most 30 minutes, counted on
-- description: the day they start), the share that viewed one page, and their average length in seconds.
-- chart: line
-- order: 15
-- Sessions are stitched when visits are stored (see the summary query): entries have
-- session_seq 1, second views session_seq 2, and the gaps inside a session add up to its
-- length. A session's later views are read up to a day past the range's end.
-- Filters pick whole sessions, by their entry view's values (by="sessions").
WITH d AS (
    SELECT {{ day("v.session_start") }} AS sday,
           SUM(CASE WHEN v.session_seq = 1 THEN 1 ELSE 0 END) AS sessions,
           SUM(CASE WHEN v.session_seq = 2 THEN 1 ELSE 0 END) AS continued,
           SUM(v.session_gap) AS seconds
    FROM visits v
    WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < {{ add_days(":t1_next", 1) }}
      AND v.session_start >= :t0 AND v.session_start < :t1_next AND v.is_bot = FALSE
      {{- filters("v", by="sessions") }}
    GROUP BY {{ day("v.session_start") }}
)
SELECT {{ date_part("c.datetime") }} AS date,
       COALESCE(d.sessions, 0) AS sessions,
       COALESCE({{ ratio("d.sessions - d.continued", "d.sessions") }}, 0) AS bounce_rate,
       COALESCE({{ ratio("d.seconds", "d.sessions") }}, 0) AS avg_duration
FROM calendar c
LEFT JOIN d ON d.sday = {{ date_part("c.datetime") }}
WHERE c.datetime >= :d0 AND c.datetime <= :d1
ORDER BY c.datetime
