-- title: Referrer sources
-- description: Page views by the host that linked to them, or (direct) without a referrer;
-- description: links within the site are left out.
-- chart: bar
-- order: 30
SELECT CASE WHEN r.referrer IS NULL OR r.referrer = '' THEN '(direct)'
            ELSE COALESCE(r.rhost, '(unknown)') END AS source,
       COUNT(*) AS visits
FROM (
    SELECT v.referrer,
           {{ url_host("v.referrer") }} AS rhost,
           {{ url_host("v.doc_uri") }} AS dhost
    FROM visits v
    WHERE v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
) r
WHERE r.referrer IS NULL OR r.referrer = ''
   OR COALESCE(r.rhost, '') <> COALESCE(r.dhost, '')
GROUP BY CASE WHEN r.referrer IS NULL OR r.referrer = '' THEN '(direct)'
              ELSE COALESCE(r.rhost, '(unknown)') END
ORDER BY visits DESC, source
LIMIT 100
