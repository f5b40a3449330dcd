-- title: Goals
-- description: Per goal: the distinct visitors who reached it in the range, how often it was
-- description: reached (events of its name, or views of its page), and those visitors as a
-- description: share of all the site's visitors in the range.
-- chart: bar
-- order: 5
-- Goals are rows of the goals table (crumby goal add HOST NAME --event E | --page PATH): kind
-- 'event' matches events.name, kind 'page' matches visits.doc_path. Every goal gets a row,
-- also at zero. The site's visitors are the visitor ids with a page view or an event in the
-- range, so that the rate stays a fraction from 0 to 1 when an event comes without a view.
-- Filters narrow the views, and the events by their page and their session (by="events"),
-- in the goals and in the site's visitors alike, so the rate stays a fraction.
-- The site's visitors are read in a scalar subquery, which every database runs once: joined
-- as a row, PostgreSQL could plan it as the inner side of a nested loop over the goals'
-- occurrences and count the range's visitors again for each of them.
WITH reached AS (
    SELECT g.id AS goal_id, v.cid AS cid
    FROM goals g
    JOIN visits v ON v.doc_path = g.target
    WHERE g.site_id = :site_id AND g.kind = 'page'
      AND v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
      {{- filters("v") }}
    UNION ALL
    SELECT g.id AS goal_id, e.cid AS cid
    FROM goals g
    JOIN events e ON e.name = g.target
    WHERE g.site_id = :site_id AND g.kind = 'event'
      AND e.site_id = :site_id AND e.datetime >= :t0 AND e.datetime < :t1_next AND e.is_bot = FALSE
      {{- filters("e", by="events") }}
),
everyone AS (
    SELECT COUNT(DISTINCT a.cid) AS visitors
    FROM (
        SELECT v.cid AS cid
        FROM visits v
        WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
          {{- filters("v") }}
        UNION
        SELECT e.cid AS cid
        FROM events e
        WHERE e.site_id = :site_id AND e.datetime >= :t0 AND e.datetime < :t1_next AND e.is_bot = FALSE
          {{- filters("e", by="events") }}
    ) a
)
SELECT g.name AS goal,
       COUNT(DISTINCT r.cid) AS visitors,
       COUNT(r.goal_id) AS conversions,
       COALESCE({{ ratio("COUNT(DISTINCT r.cid)", "(SELECT n.visitors FROM everyone n)") }}, 0) AS conversion_rate
FROM goals g
LEFT JOIN reached r ON r.goal_id = g.id
WHERE g.site_id = :site_id
GROUP BY g.id, g.name
ORDER BY visitors DESC, conversions DESC, goal
