-- title: Referring pages
-- description: Full addresses of the pages that linked to this site (internal links left out).
-- chart: table
-- order: 35
SELECT r.referrer AS referrer, COUNT(*) AS visits, COUNT(DISTINCT r.cid) AS visitors
FROM (
    SELECT v.cid, v.referrer,
           {{ url_host("v.referrer") }} AS rhost,
           {{ url_host("v.doc_uri") }} AS dhost
    FROM visits v
    WHERE v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
      AND v.referrer IS NOT NULL AND v.referrer <> ''
) r
WHERE COALESCE(r.rhost, '') <> COALESCE(r.dhost, '')
GROUP BY r.referrer
ORDER BY visits DESC, referrer
LIMIT 200
