-- title: Countries
-- description: Distinct visitors and page views by country (ISO code) where it is known.
-- chart: map
-- order: 30
-- row_filter: country=country
-- visitor_rows(): read from visitor days unless a page or session filter needs the views.
{% set rows = visitor_rows("v") %}
SELECT v.country AS country,
       COUNT(DISTINCT v.cid) AS visitors,
       {{ rows.views }} AS views
FROM {{ rows }}
  AND v.country IS NOT NULL
GROUP BY v.country
ORDER BY visitors DESC, country
