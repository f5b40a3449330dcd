-- title: Entry pages
-- description: The pages where sessions begin (a new session after 30 minutes without a view).
-- chart: bar
-- order: 25
-- row_filter: entry_page=page
-- A session's first view has session_seq 1 (sessions are stitched when visits are stored).
SELECT COALESCE(v.doc_path, '(unknown)') AS page, COUNT(*) AS entries
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
  AND v.session_seq = 1
GROUP BY COALESCE(v.doc_path, '(unknown)')
ORDER BY entries DESC, page
LIMIT 100
