"""Every built-in report, on every database, against answers computed in Python."""

from __future__ import annotations

import datetime as dt

import pytest

from crumby import clock
from crumby.reporting import get_query, list_queries, run_query
from crumby.reporting.discovery import BUILTIN_FOLDER
from tests import report_data as rd

PUBLIC = sorted(p.stem for p in (BUILTIN_FOLDER / "public").glob("*.sql"))
PRIVATE = sorted(p.stem for p in (BUILTIN_FOLDER / "private").glob("*.sql"))
#: reports whose rows come in a fixed order (by day); the others are ranked by a count
BY_DAY = {"visits", "sessions"}
SINGLE_ROW = {"summary", "realtime"}
#: the count each ranked report is ordered by, descending
RANK_COLUMN = {
    "documents": "views",
    "entry_pages": "entries",
    "locations": "visitors",
    "platforms": "visitors",
    "browsers": "visitors",
    "operating_systems": "visitors",
    "devices": "visitors",
    "languages": "visitors",
    "screens": "visitors",
    "private/events": "events",
    "private/locations": "visitors",
    "private/origins": "visits",
    "private/referrers": "visits",
    "private/campaigns": "visits",
}


def test_the_contract_and_issue_reports_are_all_built_in():
    assert {
        "visits",
        "documents",
        "locations",
        "platforms",
        "summary",
        "browsers",
        "operating_systems",
        "devices",
        "languages",
        "screens",
        "entry_pages",
        "sessions",
        "realtime",
    } <= set(PUBLIC)
    assert {"events", "locations", "origins", "referrers", "campaigns"} <= set(PRIVATE)


#: "now" for these tests: two weeks after the seeded range, so realtime's rows stay outside it
NOW = dt.datetime(2024, 3, 17, 9, 30)


@pytest.fixture
def seeded(app):
    """The report test data, inserted under a public UTC site, with the app's clock pinned."""
    clock.pin(app, NOW)
    with app.app_context():
        seed = rd.build_seed(NOW)
        rd.insert(seed)
    return seed


def _approx_rows(rows):
    return [
        [pytest.approx(v, abs=1e-3) if isinstance(v, float) else v for v in row] for row in rows
    ]


def _check(key, result, seed):
    expected = rd.expect(key, seed)
    name = key.split("/")[-1]
    if name in BY_DAY and "/" not in key:
        assert result.data == _approx_rows(expected)
        return
    if name in SINGLE_ROW:
        assert len(result.data) == 1
        assert result.data == _approx_rows(expected)
        return
    assert sorted(result.data, key=repr) == sorted(expected, key=repr)
    ranks = [row[result.columns.index(RANK_COLUMN[key])] for row in result.data]
    assert ranks == sorted(ranks, reverse=True), "ranked by count, highest first"


@pytest.mark.parametrize("name", PUBLIC)
def test_public_report_matches_python(app, seeded, name):
    with app.app_context():
        result = run_query(get_query("public", name), seeded.site, rd.T0, rd.T1, use_cache=False)
    assert result.data, "every report answers at least one row for the seeded range"
    _check(name, result, seeded)


@pytest.mark.parametrize("name", PRIVATE)
def test_private_report_matches_python(app, seeded, name):
    with app.app_context():
        result = run_query(get_query("private", name), seeded.site, rd.T0, rd.T1, use_cache=False)
    assert result.data
    _check(f"private/{name}", result, seeded)


def test_visits_fill_days_without_visits_with_zeros(app, seeded):
    with app.app_context():
        result = run_query(get_query("public", "visits"), seeded.site, rd.T0, rd.T1)
    assert result.columns == ["date", "users", "views"]
    by_day = {row[0]: row for row in result.data}
    assert by_day[rd.EMPTY_DAY.isoformat()] == [rd.EMPTY_DAY.isoformat(), 0, 0]
    assert [row[0] for row in result.data] == [d.isoformat() for d in rd.days()]


def test_a_range_without_any_visit_is_all_zero_days(app, seeded):
    t0, t1 = dt.date(2001, 5, 1), dt.date(2001, 5, 3)
    with app.app_context():
        visits = run_query(get_query("public", "visits"), seeded.site, t0, t1)
        summary = run_query(get_query("public", "summary"), seeded.site, t0, t1)
    assert visits.data == [[d.isoformat(), 0, 0] for d in rd.days(t0, t1)]
    assert summary.data == [[0, 0, 0, 0, 0]]


def test_summary_columns_are_the_dashboard_headline(app, seeded):
    with app.app_context():
        result = run_query(get_query("public", "summary"), seeded.site, rd.T0, rd.T1)
    assert result.columns == ["visitors", "views", "sessions", "bounce_rate", "avg_duration"]
    assert result.chart == "kpi"
    assert 0 <= result.data[0][3] <= 1


def test_bots_never_count(app, seeded):
    with app.app_context():
        browsers = run_query(get_query("public", "browsers"), seeded.site, rd.T0, rd.T1)
        events = run_query(get_query("private", "events"), seeded.site, rd.T0, rd.T1)
    assert "Googlebot" not in [row[0] for row in browsers.data]
    assert "botclick" not in [row[0] for row in events.data]


def test_every_built_in_query_has_title_description_and_chart(app):
    with app.app_context():
        for scope in ("public", "private"):
            for query in list_queries(scope):
                assert query.title and query.description and query.chart, query.key
