-- title: Places
-- description: Distinct visitors and page views by country, region and city.
-- chart: table
-- order: 20
-- row_filter: country=country region=region city=city
SELECT v.country AS country,
       COALESCE(v.subdivision_1, '') AS region,
       COALESCE(v.city, '') AS city,
       COUNT(DISTINCT v.cid) AS visitors,
       COUNT(*) AS views
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
  AND v.country IS NOT NULL
GROUP BY v.country, COALESCE(v.subdivision_1, ''), COALESCE(v.city, '')
ORDER BY visitors DESC, views DESC, country, region, city
LIMIT 500
