-- title: Browsers
-- description: Distinct visitors by browser (and by version, on demand).
-- chart: pie
-- order: 50
-- row_filter: browser=browser
-- parameters: versions
-- versions=on adds a version column (major.minor, as the User-Agent gives it) and
-- counts each browser version apart; the row filter still narrows to the browser.
SELECT COALESCE(v.browser, '(unknown)') AS browser,
{% if versions %}
       COALESCE(v.version, '') AS version,
{% endif %}
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
GROUP BY COALESCE(v.browser, '(unknown)'){% if versions %}, COALESCE(v.version, ''){% endif %}
ORDER BY visitors DESC, browser{% if versions %}, version{% endif %}
LIMIT 100
