-- title: Funnel
-- description: A funnel's steps (funnel=NAME): the visitors who, within one session, reached
-- description: its goals 1..k in that order, that as a share of step 1's visitors, and how
-- description: many were lost since the step before.
-- chart: funnel
-- order: 6
-- parameters: funnel
-- The funnel parameter gives funnel.steps: per step its number, its kind ('event' or 'page')
-- and the bound parameters holding its goal's name and its event name or page path.
-- Sessions are those starting in the range (their views and events are read up to a day
-- past its end). Every view carries the start of its session, and so does every event: the
-- session it falls in, from the session's first view up to 30 minutes after its last view,
-- stored with it by the ingest pipeline (crumby.ingest.eventsessions). A session's goal
-- occurrences are ordered by time, views before events at the same instant, then as stored;
-- step k counts the session when occurrences of goals 1..k come in that order (each a later
-- occurrence than the one before).
-- Filters pick whole sessions, by their entry view's values (by="sessions"), which events
-- carry too.
{%- set pages = funnel.steps | selectattr("kind", "equalto", "page") | map(attribute="target") | list %}
WITH
{%- if pages %}
views AS (
    SELECT v.id AS id, v.cid AS cid, v.session_start AS session_start, v.datetime AS at,
           v.doc_path AS doc_path
    FROM visits v
    WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < {{ add_days(":t1_next", 1) }}
      AND v.session_start >= :t0 AND v.session_start < :t1_next
      AND v.is_bot = FALSE AND v.cid IS NOT NULL {{ filters("v", by="sessions") }}
      AND v.doc_path IN ({{ pages | join(", ") }})
),
{%- endif %}
hits AS (
{%- for s in funnel.steps %}
{%- if s.kind == "page" %}
    SELECT w.cid AS cid, w.session_start AS session_start, w.at AS at, 0 AS source, w.id AS id,
           {{ s.step }} AS step
    FROM views w
    WHERE w.doc_path = {{ s.target }}
{%- else %}
    SELECT e.cid AS cid, e.session_start AS session_start, e.datetime AS at, 1 AS source,
           e.id AS id, {{ s.step }} AS step
    FROM events e
    WHERE e.site_id = :site_id AND e.datetime >= :t0
      AND e.datetime < {{ add_minutes(":t1_next", 1470) }}
      AND e.session_start >= :t0 AND e.session_start < :t1_next
      AND e.is_bot = FALSE AND e.cid IS NOT NULL AND e.name = {{ s.target }}
      {{- filters("e", by="sessions") }}
{%- endif %}
{%- if not loop.last %}
    UNION ALL
{%- endif %}
{%- endfor %}
),
ranked AS (
    SELECT cid, session_start, step,
           DENSE_RANK() OVER (PARTITION BY cid, session_start ORDER BY at, source, id) AS pos
    FROM hits
),
s1 AS (
    SELECT cid, session_start, MIN(pos) AS pos
    FROM ranked
    WHERE step = 1
    GROUP BY cid, session_start
),
{%- for s in funnel.steps[1:] %}
s{{ s.step }} AS (
    SELECT r.cid AS cid, r.session_start AS session_start, MIN(r.pos) AS pos
    FROM ranked r
    JOIN s{{ s.step - 1 }} b ON b.cid = r.cid AND b.session_start = r.session_start AND r.pos > b.pos
    WHERE r.step = {{ s.step }}
    GROUP BY r.cid, r.session_start
),
{%- endfor %}
counts AS (
{%- for s in funnel.steps %}
    SELECT {{ s.step }} AS step, {{ s.goal }} AS goal, COUNT(DISTINCT cid) AS visitors
    FROM s{{ s.step }}
{%- if not loop.last %}
    UNION ALL
{%- endif %}
{%- endfor %}
)
SELECT c.step AS step,
       c.goal AS goal,
       c.visitors AS visitors,
       COALESCE({{ ratio("c.visitors", "f.visitors") }}, 0) AS conversion_rate,
       COALESCE(b.visitors - c.visitors, 0) AS dropoff
FROM counts c
JOIN counts f ON f.step = 1
LEFT JOIN counts b ON b.step = c.step - 1
ORDER BY c.step
