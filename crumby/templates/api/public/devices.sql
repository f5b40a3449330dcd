-- title: Device types
-- description: Distinct visitors by device type (desktop, mobile, tablet).
-- chart: pie
-- order: 60
-- row_filter: device=device
-- visitor_rows(): read from visitor days unless a page or session filter needs the views.
{% set rows = visitor_rows("v") %}
SELECT COALESCE(v.device, '(unknown)') AS device,
       COUNT(DISTINCT v.cid) AS visitors
FROM {{ rows }}
GROUP BY COALESCE(v.device, '(unknown)')
ORDER BY visitors DESC, device
LIMIT 100
