-- title: Languages
-- description: Distinct visitors by browser language (lower-cased, as en-us).
-- chart: bar
-- order: 65
-- row_filter: language=language
-- visitor_rows(): read from visitor days unless a page or session filter needs the views.
{% set rows = visitor_rows("v") %}
SELECT COALESCE(lower(v.lang), '(unknown)') AS language,
       COUNT(DISTINCT v.cid) AS visitors
FROM {{ rows }}
GROUP BY COALESCE(lower(v.lang), '(unknown)')
ORDER BY visitors DESC, language
LIMIT 100
