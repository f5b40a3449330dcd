-- title: Referring pages
-- description: Full addresses of the pages that linked to this site (internal links left out).
-- chart: table
-- order: 35
-- referrer_host and doc_host are the hosts of the referrer and the page, stored with each visit.
SELECT v.referrer AS referrer, COUNT(*) AS visits, COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
  AND v.referrer IS NOT NULL AND v.referrer <> ''
  AND COALESCE(v.referrer_host, '') <> COALESCE(v.doc_host, '')
GROUP BY v.referrer
ORDER BY visits DESC, referrer
LIMIT 200
