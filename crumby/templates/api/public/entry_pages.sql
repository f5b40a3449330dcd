-- title: Entry pages
-- description: The pages where sessions begin (a new session after 30 minutes without a view).
-- chart: bar
-- order: 25
-- row_filter: entry_page=page
-- Sessions per entry page, summed from session_days (the sessions that began each local day,
-- by their entry's attributes). A session's entry view's own values are its entry_* values,
-- so filters read them as by="sessions" does.
SELECT COALESCE(s.entry_page, '(unknown)') AS page, SUM(s.sessions) AS entries
FROM session_days s
WHERE s.site_id = :site_id AND s.day >= :d0 AND s.day <= :d1 {{ filters("s", by="sessions") }}
GROUP BY COALESCE(s.entry_page, '(unknown)')
HAVING SUM(s.sessions) > 0
ORDER BY entries DESC, page
LIMIT 100
