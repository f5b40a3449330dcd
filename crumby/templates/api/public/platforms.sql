-- title: Platforms
-- description: Distinct visitors and page views by operating system and browser.
-- chart: table
-- order: 45
-- row_filter: os=platform browser=browser
SELECT COALESCE(v.platform, '(unknown)') AS platform,
       COALESCE(v.browser, '(unknown)') AS browser,
       COUNT(DISTINCT v.cid) AS visitors,
       COUNT(*) AS views
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
GROUP BY COALESCE(v.platform, '(unknown)'), COALESCE(v.browser, '(unknown)')
ORDER BY visitors DESC, platform, browser
LIMIT 100
