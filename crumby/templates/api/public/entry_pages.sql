-- title: Entry pages
-- description: The pages where sessions begin (a new session after 30 minutes without a view).
-- chart: bar
-- order: 25
WITH v AS (
    SELECT v.cid, v.doc_uri, v.datetime,
           LAG(v.datetime) OVER (PARTITION BY v.cid ORDER BY v.datetime, v.id) AS prev
    FROM visits v
    WHERE v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
)
SELECT COALESCE(doc_uri, '(unknown)') AS page, COUNT(*) AS entries
FROM v
WHERE prev IS NULL OR {{ seconds_between("prev", "datetime") }} > 1800
GROUP BY COALESCE(doc_uri, '(unknown)')
ORDER BY entries DESC, page
LIMIT 100
