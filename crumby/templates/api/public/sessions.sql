-- title: Sessions
-- description: Sessions per day (a visitor's views with gaps of at most 30 minutes, counted on
-- description: the day they start), the share that viewed one page, and their average length in seconds.
-- chart: line
-- order: 15
-- Sessions are stitched when visits are stored, and the ingest pipeline sums them per local
-- day they began and combination of their entry's attributes in session_days: sessions,
-- second views (one-view sessions are the difference) and seconds between views (their length).
-- Filters pick whole sessions, by their entry view's values (by="sessions": session_days has
-- the entry_* columns of the views).
WITH d AS (
    SELECT {{ date_part("s.day") }} AS sday,
           SUM(s.sessions) AS sessions,
           SUM(s.continued) AS continued,
           SUM(s.seconds) AS seconds
    FROM session_days s
    WHERE s.site_id = :site_id AND s.day >= :d0 AND s.day <= :d1 {{ filters("s", by="sessions") }}
    GROUP BY {{ date_part("s.day") }}
)
SELECT {{ date_part("c.datetime") }} AS date,
       COALESCE(d.sessions, 0) AS sessions,
       COALESCE({{ ratio("d.sessions - d.continued", "d.sessions") }}, 0) AS bounce_rate,
       COALESCE({{ ratio("d.seconds", "d.sessions") }}, 0) AS avg_duration
FROM calendar c
LEFT JOIN d ON d.sday = {{ date_part("c.datetime") }}
WHERE c.datetime >= :d0 AND c.datetime <= :d1
ORDER BY c.datetime
