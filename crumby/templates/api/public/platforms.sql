-- title: Platforms
-- description: Distinct visitors and page views by operating system and browser.
-- chart: table
-- order: 45
-- row_filter: os=platform browser=browser
-- visitor_rows(): read from visitor days unless a page or session filter needs the views.
{% set rows = visitor_rows("v") %}
SELECT COALESCE(v.platform, '(unknown)') AS platform,
       COALESCE(v.browser, '(unknown)') AS browser,
       COUNT(DISTINCT v.cid) AS visitors,
       {{ rows.views }} AS views
FROM {{ rows }}
GROUP BY COALESCE(v.platform, '(unknown)'), COALESCE(v.browser, '(unknown)')
ORDER BY visitors DESC, platform, browser
LIMIT 100
