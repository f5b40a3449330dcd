-- title: Referrer sources
-- description: Page views by the host that linked to them, or (direct) without a referrer;
-- description: links within the site are left out.
-- chart: bar
-- order: 30
SELECT r.source AS source, COUNT(*) AS visits
FROM (
    SELECT CASE WHEN v.referrer IS NULL OR v.referrer = '' THEN '(direct)'
                ELSE COALESCE({{ url_host("v.referrer") }}, '(unknown)') END AS source,
           COALESCE({{ url_host("v.referrer") }}, '') AS rhost,
           COALESCE({{ url_host("v.doc_uri") }}, '') AS dhost
    FROM visits v
    WHERE v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
) r
WHERE r.source = '(direct)' OR r.rhost <> r.dhost
GROUP BY r.source
ORDER BY visits DESC, source
LIMIT 100
