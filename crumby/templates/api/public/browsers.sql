-- title: Browsers
-- description: Distinct visitors by browser.
-- chart: pie
-- order: 50
-- row_filter: browser=browser
SELECT COALESCE(v.browser, '(unknown)') AS browser,
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
GROUP BY COALESCE(v.browser, '(unknown)')
ORDER BY visitors DESC, browser
LIMIT 100
