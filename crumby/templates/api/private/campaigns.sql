-- title: Campaigns
-- description: Page views and visitors by UTM source, medium and campaign (tagged visits only).
-- chart: table
-- order: 40
-- row_filter: utm_source=source utm_medium=medium utm_campaign=campaign
SELECT COALESCE(v.utm_source, '') AS source,
       COALESCE(v.utm_medium, '') AS medium,
       COALESCE(v.utm_campaign, '') AS campaign,
       COUNT(*) AS visits,
       COUNT(DISTINCT v.cid) AS visitors
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
  AND (v.utm_source IS NOT NULL OR v.utm_medium IS NOT NULL OR v.utm_campaign IS NOT NULL)
GROUP BY COALESCE(v.utm_source, ''), COALESCE(v.utm_medium, ''), COALESCE(v.utm_campaign, '')
ORDER BY visits DESC, source, medium, campaign
LIMIT 200
