-- title: Screen sizes
-- description: Distinct visitors by screen resolution.
-- chart: bar
-- order: 70
-- visitor_rows(): read from visitor days unless a page or session filter needs the views.
{% set rows = visitor_rows("v") %}
SELECT COALESCE(v.screen_res, '(unknown)') AS screen,
       COUNT(DISTINCT v.cid) AS visitors
FROM {{ rows }}
GROUP BY COALESCE(v.screen_res, '(unknown)')
ORDER BY visitors DESC, screen
LIMIT 100
