-- title: Operating systems
-- description: Distinct visitors by operating system (and by version, on demand).
-- chart: pie
-- order: 55
-- row_filter: os=os
-- parameters: versions
-- versions=on adds a version column (major.minor, as the User-Agent gives it; empty for
-- views stored before Crumby kept it) and counts each OS version apart; the row filter
-- still narrows to the OS.
-- visitor_rows(): read from visitor days unless a page or session filter needs the views.
{% set rows = visitor_rows("v") %}
SELECT COALESCE(v.platform, '(unknown)') AS os,
{% if versions %}
       COALESCE(v.os_version, '') AS version,
{% endif %}
       COUNT(DISTINCT v.cid) AS visitors
FROM {{ rows }}
GROUP BY COALESCE(v.platform, '(unknown)'){% if versions %}, COALESCE(v.os_version, ''){% endif %}
ORDER BY visitors DESC, os{% if versions %}, version{% endif %}
LIMIT 100
