-- title: Right now
-- description: Distinct visitors and page views in the last 30 minutes (ignores the range).
-- chart: kpi
-- order: 2
-- live: yes
SELECT COUNT(DISTINCT v.cid) AS visitors,
       COUNT(*) AS views
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= {{ add_minutes(":now", -30) }} AND v.datetime <= :now
  AND v.is_bot = FALSE {{ filters("v") }}
