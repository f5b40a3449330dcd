-- title: Operating systems
-- description: Distinct visitors by operating system.
-- chart: pie
-- order: 55
-- row_filter: os=os
SELECT COALESCE(v.platform, '(unknown)') AS os,
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
GROUP BY COALESCE(v.platform, '(unknown)')
ORDER BY visitors DESC, os
LIMIT 100
