-- title: Time on page
-- description: Page views per page, how many of them were followed by another view of the same
-- description: session (timed), and the average seconds until that next view (avg_time).
-- description: A session's last view tells no time, as no later view says when it was left.
-- chart: table
-- order: 27
-- row_filter: page=page
-- next_gap is set on a view when its session's next view is stored: the next view's
-- session_gap. AVG leaves out the views without one (exits); a page that is only ever
-- left has no avg_time (null).
SELECT v.doc_path AS page,
       COUNT(*) AS views,
       COUNT(v.next_gap) AS timed,
       AVG(v.next_gap) AS avg_time
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
  AND v.doc_path IS NOT NULL
GROUP BY v.doc_path
ORDER BY views DESC, page
LIMIT 100
