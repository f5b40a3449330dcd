-- title: Places
-- description: Distinct visitors and page views by country, region and city.
-- chart: table
-- order: 20
-- row_filter: country=country region=region city=city
-- visitor_rows(): read from visitor days unless a page or session filter needs the views.
{% set rows = visitor_rows("v") %}
SELECT v.country AS country,
       COALESCE(v.subdivision_1, '') AS region,
       COALESCE(v.city, '') AS city,
       COUNT(DISTINCT v.cid) AS visitors,
       {{ rows.views }} AS views
FROM {{ rows }}
  AND v.country IS NOT NULL
GROUP BY v.country, COALESCE(v.subdivision_1, ''), COALESCE(v.city, '')
ORDER BY visitors DESC, views DESC, country, region, city
LIMIT 500
