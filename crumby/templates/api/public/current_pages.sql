-- title: Pages viewed now
-- description: The page each visitor of the last 30 minutes is on: their session's latest view (ignores the range).
-- chart: bar
-- order: 3
-- row_filter: page=page
-- live: yes
-- A session's latest view is the one no later view follows yet (next_gap IS NULL), so
-- "being viewed now" needs no search for each visitor's newest row.
SELECT v.doc_path AS page,
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= {{ add_minutes(":now", -30) }} AND v.datetime <= :now
  AND v.is_bot = FALSE AND v.next_gap IS NULL AND v.doc_path IS NOT NULL {{ filters("v") }}
GROUP BY v.doc_path
ORDER BY visitors DESC, page
