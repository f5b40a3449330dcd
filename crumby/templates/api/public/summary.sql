-- title: Summary
-- description: Visitors, page views, sessions (a visitor's views with gaps of at most
-- description: 30 minutes, counted in the range they start in), the share of one-view
-- description: sessions and their average length in seconds.
-- chart: kpi
-- order: 1
-- Sessions are stitched when visits are stored: an entry view has session_seq 1, a
-- session's second view session_seq 2, and session_gap holds the seconds since the
-- session's previous view. So sessions are entries, one-view sessions are entries minus
-- second views, and a session's length is the sum of its gaps. A session belongs to the
-- range it starts in; its later views are read up to a day past the range's end.
-- With filters, visitors and views count the matching views; the session figures count the
-- sessions whose entry view matches (by="sessions": each view carries its entry's values).
-- With session filters only, both are the same conditions, and they narrow the scan itself.
{% set views = filters("v") %}{% set sessions = filters("v", by="sessions") %}
WITH t AS (
    SELECT COUNT(DISTINCT CASE WHEN v.datetime < :t1_next {{ views }} THEN v.cid END) AS visitors,
           SUM(CASE WHEN v.datetime < :t1_next {{ views }} THEN 1 ELSE 0 END) AS views,
           SUM(CASE WHEN v.session_seq = 1 AND v.datetime < :t1_next {{ sessions }} THEN 1 ELSE 0 END) AS sessions,
           SUM(CASE WHEN v.session_seq = 2 AND v.session_start < :t1_next
                    AND v.session_start >= :t0 {{ sessions }} THEN 1 ELSE 0 END) AS continued,
           SUM(CASE WHEN v.session_start < :t1_next AND v.session_start >= :t0 {{ sessions }}
                    THEN v.session_gap ELSE 0 END) AS seconds
    FROM visits v
    WHERE v.site_id = :site_id AND v.datetime >= :t0 AND v.datetime < {{ add_days(":t1_next", 1) }} AND v.is_bot = FALSE
      {%- if views == sessions %}{{ views }}{% endif %}
)
SELECT COALESCE(visitors, 0) AS visitors,
       COALESCE(views, 0) AS views,
       COALESCE(sessions, 0) AS sessions,
       COALESCE({{ ratio("sessions - continued", "sessions") }}, 0) AS bounce_rate,
       COALESCE({{ ratio("seconds", "sessions") }}, 0) AS avg_duration
FROM t
