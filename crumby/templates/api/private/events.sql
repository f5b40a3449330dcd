-- title: Events
-- description: Events by name and value: how often each was sent and by how many visitors.
-- chart: table
-- order: 10
-- Each event carries the page it was sent from and the attributes of its visitor's session
-- (filters(..., by="events")): page matches the event's page; the other filters match the
-- session it falls in (its entry page, source, campaign, and where and on what it began).
SELECT e.name AS name,
       COALESCE(e.value, '') AS value,
       COUNT(*) AS events,
       COUNT(DISTINCT e.cid) AS visitors
FROM events e
WHERE e.site_id = :site_id AND e.datetime >= :t0 AND e.datetime < :t1_next AND e.is_bot = FALSE {{ filters("e", by="events") }}
GROUP BY e.name, COALESCE(e.value, '')
ORDER BY events DESC, name, value
LIMIT 500
