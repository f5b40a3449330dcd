-- title: Device types
-- description: Distinct visitors by device type (desktop, mobile, tablet).
-- chart: pie
-- order: 60
-- row_filter: device=device
SELECT COALESCE(v.device, '(unknown)') AS device,
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
GROUP BY COALESCE(v.device, '(unknown)')
ORDER BY visitors DESC, device
LIMIT 100
