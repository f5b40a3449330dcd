-- title: Languages
-- description: Distinct visitors by browser language (lower-cased, as en-us).
-- chart: bar
-- order: 65
-- row_filter: language=language
SELECT COALESCE(lower(v.lang), '(unknown)') AS language,
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
GROUP BY COALESCE(lower(v.lang), '(unknown)')
ORDER BY visitors DESC, language
LIMIT 100
