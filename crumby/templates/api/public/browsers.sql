-- title: Browsers
-- description: Distinct visitors by browser (and by version, on demand).
-- chart: pie
-- order: 50
-- row_filter: browser=browser
-- parameters: versions
-- versions=on adds a version column (major.minor, as the User-Agent gives it) and
-- counts each browser version apart; the row filter still narrows to the browser.
-- visitor_rows(): read from visitor days unless a page or session filter needs the views.
{% set rows = visitor_rows("v") %}
SELECT COALESCE(v.browser, '(unknown)') AS browser,
{% if versions %}
       COALESCE(v.version, '') AS version,
{% endif %}
       COUNT(DISTINCT v.cid) AS visitors
FROM {{ rows }}
GROUP BY COALESCE(v.browser, '(unknown)'){% if versions %}, COALESCE(v.version, ''){% endif %}
ORDER BY visitors DESC, browser{% if versions %}, version{% endif %}
LIMIT 100
