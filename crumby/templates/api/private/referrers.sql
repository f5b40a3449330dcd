-- title: Referrer sources
-- description: Page views by the host that linked to them (without www.), or (direct)
-- description: without a referrer; links within the site are left out.
-- chart: bar
-- order: 30
-- row_filter: source=source
-- referrer_host and doc_host are the hosts of the referrer and the page, stored with each visit.
-- A source here is what the source filter matches (crumby.models.view_source).
SELECT CASE WHEN v.referrer IS NULL OR v.referrer = '' THEN '(direct)'
            WHEN v.referrer_host LIKE 'www.%' THEN SUBSTR(v.referrer_host, 5)
            ELSE COALESCE(v.referrer_host, '(unknown)') END AS source,
       COUNT(*) AS visits
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
  AND (v.referrer IS NULL OR v.referrer = ''
       OR COALESCE(v.referrer_host, '') <> COALESCE(v.doc_host, ''))
GROUP BY CASE WHEN v.referrer IS NULL OR v.referrer = '' THEN '(direct)'
              WHEN v.referrer_host LIKE 'www.%' THEN SUBSTR(v.referrer_host, 5)
              ELSE COALESCE(v.referrer_host, '(unknown)') END
ORDER BY visits DESC, source
LIMIT 100
