-- title: Exit pages
-- description: The pages where sessions end (their last view), how many of the page's views
-- description: in those sessions were exits, and that share (exit_rate, 0 to 1).
-- chart: bar
-- order: 26
-- row_filter: page=page
-- Each view stores the seconds until its session's next view (next_gap, set when that view
-- is stored); the session's last view has none, so exits are views with next_gap NULL. As in
-- the sessions report, a session belongs to the range it starts in and its later views are
-- read up to a day past the range's end. Filters narrow the views (of this page: how many
-- of its views were exits).
SELECT COALESCE(v.doc_path, '(unknown)') AS page,
       SUM(CASE WHEN v.next_gap IS NULL THEN 1 ELSE 0 END) AS exits,
       COUNT(*) AS views,
       {{ ratio("SUM(CASE WHEN v.next_gap IS NULL THEN 1 ELSE 0 END)", "COUNT(*)") }} AS exit_rate
FROM visits v
WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < {{ add_days(":t1_next", 1) }}
  AND v.session_start >= :t0 AND v.session_start < :t1_next AND v.is_bot = FALSE {{ filters("v") }}
GROUP BY COALESCE(v.doc_path, '(unknown)')
HAVING SUM(CASE WHEN v.next_gap IS NULL THEN 1 ELSE 0 END) > 0
ORDER BY exits DESC, page
LIMIT 100
