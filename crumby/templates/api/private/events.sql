-- title: Events
-- description: Events by name and value: how often each was sent and by how many visitors.
-- chart: table
-- order: 10
-- Events carry no page-view attributes: a filter keeps the events of the visitors who have a
-- page view in the range that matches it (filters(..., by="visitors")).
SELECT e.name AS name,
       COALESCE(e.value, '') AS value,
       COUNT(*) AS events,
       COUNT(DISTINCT e.cid) AS visitors
FROM events e
WHERE e.site_id = :site_id AND e.datetime >= :t0 AND e.datetime < :t1_next AND e.is_bot = FALSE {{ filters("e", by="visitors") }}
GROUP BY e.name, COALESCE(e.value, '')
ORDER BY events DESC, name, value
LIMIT 500
