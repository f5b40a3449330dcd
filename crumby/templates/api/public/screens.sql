-- title: Screen sizes
-- description: Distinct visitors by screen resolution.
-- chart: bar
-- order: 70
SELECT COALESCE(v.screen_res, '(unknown)') AS screen,
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
GROUP BY COALESCE(v.screen_res, '(unknown)')
ORDER BY visitors DESC, screen
LIMIT 100
