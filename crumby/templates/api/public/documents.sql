-- title: Top pages
-- description: The most viewed pages with a title they were seen with, page views and distinct visitors.
-- chart: table
-- order: 20
-- row_filter: page=page
SELECT v.doc_path AS page,
       MAX(v.doc_title) AS title,
       COUNT(*) AS views,
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
  AND v.doc_path IS NOT NULL
GROUP BY v.doc_path
ORDER BY views DESC, page
LIMIT 100
