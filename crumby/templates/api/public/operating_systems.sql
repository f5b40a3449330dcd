-- title: Operating systems
-- description: Distinct visitors by operating system (and by version, on demand).
-- chart: pie
-- order: 55
-- row_filter: os=os
-- parameters: versions
-- versions=on adds a version column (major.minor, as the User-Agent gives it; empty for
-- views stored before Crumby kept it) and counts each OS version apart; the row filter
-- still narrows to the OS.
SELECT COALESCE(v.platform, '(unknown)') AS os,
{% if versions %}
       COALESCE(v.os_version, '') AS version,
{% endif %}
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
GROUP BY COALESCE(v.platform, '(unknown)'){% if versions %}, COALESCE(v.os_version, ''){% endif %}
ORDER BY visitors DESC, os{% if versions %}, version{% endif %}
LIMIT 100
