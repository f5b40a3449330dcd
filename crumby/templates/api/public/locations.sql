-- title: Countries
-- description: Distinct visitors and page views by country (ISO code) where it is known.
-- chart: map
-- order: 30
-- row_filter: country=country
SELECT v.country AS country,
       COUNT(DISTINCT v.cid) AS visitors,
       COUNT(*) AS views
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
  AND v.country IS NOT NULL
GROUP BY v.country
ORDER BY visitors DESC, country
