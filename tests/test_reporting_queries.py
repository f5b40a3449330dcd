"""Every built-in report, on every database, against answers computed in Python."""

from __future__ import annotations

import datetime as dt

import pytest

from crumby import clock, ingest
from crumby.extensions import db
from crumby.reporting import get_query, list_queries, run_query
from crumby.reporting.discovery import BUILTIN_FOLDER
from crumby.sites import add_site
from tests import report_data as rd

PUBLIC = sorted(p.stem for p in (BUILTIN_FOLDER / "public").glob("*.sql"))
#: goals and funnel count the site's goals and take funnel=NAME: tests/test_goal_reports.py
OWN_TESTS = {"goals", "funnel"}
PRIVATE = sorted(
    p.stem for p in (BUILTIN_FOLDER / "private").glob("*.sql") if p.stem not in OWN_TESTS
)
#: reports whose rows come in a fixed order (by day); the others are ranked by a count
BY_DAY = {"visits", "sessions"}
SINGLE_ROW = {"summary", "realtime"}
#: the count each ranked report is ordered by, descending
RANK_COLUMN = {
    "documents": "views",
    "entry_pages": "entries",
    "exit_pages": "exits",
    "current_pages": "visitors",
    "time_on_page": "views",
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
        "exit_pages",
        "time_on_page",
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


def _check(key, result, seed, t0=rd.T0, t1=rd.T1, zone="UTC"):
    expected = rd.expect(key, seed, t0, t1, zone)
    name = key.split("/")[-1]
    where = f"{key} for {seed.site.host} ({zone}) {t0}..{t1}"
    if name in BY_DAY and "/" not in key:
        assert result.data == _approx_rows(expected), where
        return
    if name in SINGLE_ROW:
        assert len(result.data) == 1, where
        assert result.data == _approx_rows(expected), where
        return

    # rows sorted by their other columns; fractions compared to 3 places (MySQL's division
    # of integers keeps 4 decimals)
    def order(row: list) -> str:
        return repr([v for v in row if not isinstance(v, float)])

    assert sorted(result.data, key=order) == _approx_rows(sorted(expected, key=order)), where
    ranks = [row[result.columns.index(RANK_COLUMN[key])] for row in result.data]
    assert ranks == sorted(ranks, reverse=True), f"{where}: ranked by count, highest first"


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


# ---- two sites, two time zones -----------------------------------------------------------

#: every built-in report, as rd.expect names them
EVERY = [*PUBLIC, *(f"private/{name}" for name in PRIVATE)]
#: local ranges: around both changes, each changing day alone (23 and 25 hours long in
#: Berlin), and one from spring to autumn
ZONED_RANGES = [
    rd.SPRING,
    rd.AUTUMN,
    (dt.date(2024, 3, 31), dt.date(2024, 3, 31)),
    (dt.date(2024, 10, 27), dt.date(2024, 10, 27)),
    (rd.SPRING[0], rd.AUTUMN[1]),
]


@pytest.fixture
def zoned(app):
    """Europe/Berlin and Asia/Kolkata sites in one database, seeded near their local midnights."""
    clock.pin(app, rd.ZONED_NOW)
    with app.app_context():
        return rd.insert_zoned()


def test_the_zoned_seed_tells_local_days_from_utc_days(zoned):
    """The seed is worth testing with: bucketing it by UTC dates would give other answers."""
    for spec in rd.ZONED:
        seed = zoned[spec.host]
        for span in (rd.SPRING, rd.AUTUMN):
            assert rd.expect("visits", seed, *span, spec.zone) != rd.expect("visits", seed, *span)
        for day in spec.empty:  # no view on the local day, but some on the UTC date
            (local,) = rd.expect("visits", seed, day, day, spec.zone)
            (utc,) = rd.expect("visits", seed, day, day)
            assert local == [day.isoformat(), 0, 0] and utc[2] > 0
    # Berlin's changing days are 23 and 25 hours long, and views fall in both of its 02:30s
    midnight = [rd.to_utc(dt.datetime(2024, m, d), rd.BERLIN) for m, d in ((3, 31), (4, 1))]
    assert midnight[1] - midnight[0] == dt.timedelta(hours=23)
    midnight = [rd.to_utc(dt.datetime(2024, 10, d), rd.BERLIN) for d in (27, 28)]
    assert midnight[1] - midnight[0] == dt.timedelta(hours=25)
    views = zoned["berlin.example"].visits
    assert {dt.datetime(2024, 10, 27, 0, 30), dt.datetime(2024, 10, 27, 1, 30)} <= {
        r["datetime"] for r in views
    }


@pytest.mark.parametrize("key", EVERY)
def test_every_report_counts_each_sites_own_local_days(app, zoned, key):
    scope, name = key.split("/") if "/" in key else ("public", key)
    answered = 0
    with app.app_context():
        query = get_query(scope, name)
        for seed in zoned.values():
            for t0, t1 in ZONED_RANGES:
                result = run_query(query, seed.site, t0, t1, use_cache=False)
                _check(key, result, seed, t0, t1, seed.site.timezone)
                answered += bool(result.data)
    assert answered >= len(ZONED_RANGES), "most ranges have rows to count"


def test_no_row_of_one_site_shows_in_the_others_reports(app, zoned):
    berlin, kolkata = zoned["berlin.example"], zoned["kolkata.example"]
    own = {
        host: (f"/{p}/", f"{p.upper()} Title", f"{p}-click", f"{p}-signup")
        for host, p in ((berlin.site.host, "de"), (kolkata.site.host, "in"))
    }
    everything = (rd.SPRING[0], rd.AUTUMN[1])
    with app.app_context():
        answers = {
            seed.site.host: {
                key: run_query(
                    get_query(*(key.split("/") if "/" in key else ("public", key))),
                    seed.site,
                    *everything,
                    use_cache=False,
                ).data
                for key in EVERY
            }
            for seed in (berlin, kolkata)
        }
    for host, reports in answers.items():
        (other,) = set(own) - {host}
        texts = [v for rows in reports.values() for row in rows for v in row if isinstance(v, str)]
        assert any(t.startswith(own[host]) for t in texts), host
        assert not [t for t in texts if t.startswith(own[other]) or other in t], host
    for key in ("visits", "summary", "documents", "realtime", "private/events"):
        assert answers[berlin.site.host][key] != answers[kolkata.site.host][key], key


def test_changing_days_by_hand(app):
    """A few views at known UTC instants, and their local days written out by hand."""
    berlin_views = [
        "2024-03-30 22:59:59",  # 23:59:59 CET, Saturday
        "2024-03-31 00:00:00",  # 00:00 CET, Sunday: 23 hours long
        "2024-03-31 00:59:59",  # 01:59:59 CET
        "2024-03-31 01:00:00",  # 03:00 CEST
        "2024-03-31 21:59:59",  # 23:59:59 CEST
        "2024-03-31 22:00:00",  # 00:00 CEST, Monday
        "2024-10-26 21:59:59",  # 23:59:59 CEST, Saturday
        "2024-10-26 22:00:00",  # 00:00 CEST, Sunday: 25 hours long
        "2024-10-27 00:30:00",  # 02:30 CEST
        "2024-10-27 01:30:00",  # 02:30 CET
        "2024-10-27 22:59:59",  # 23:59:59 CET
        "2024-10-27 23:00:00",  # 00:00 CET, Monday
    ]
    kolkata_views = [
        "2024-03-30 18:29:59",  # 23:59:59 IST
        "2024-03-30 18:30:00",  # 00:00 IST, Sunday
        "2024-03-31 18:29:59",  # 23:59:59 IST
        "2024-03-31 18:30:00",  # 00:00 IST, Monday
    ]
    with app.app_context():
        sites = {}
        with db.engine.begin() as connection:
            for host, zone in (("berlin.example", rd.BERLIN), ("kolkata.example", rd.KOLKATA)):
                sites[host] = add_site(connection, host, zone, public=True)
        for host, views in (("berlin.example", berlin_views), ("kolkata.example", kolkata_views)):
            rows = [
                {
                    "cid": f"x{n}",
                    "datetime": dt.datetime.fromisoformat(when),
                    "doc_uri": f"https://{host}/p?n={n}",
                    "is_bot": False,
                }
                for n, when in enumerate(views)
            ]
            ingest.store(app, rows)

        def visits(host, first, last):
            query = get_query("public", "visits")
            return run_query(query, sites[host], first, last, use_cache=False).data

        def summary(host, day):
            query = get_query("public", "summary")
            return run_query(query, sites[host], day, day, use_cache=False).data

        berlin, kolkata = "berlin.example", "kolkata.example"
        assert visits(berlin, dt.date(2024, 3, 30), dt.date(2024, 4, 1)) == [
            ["2024-03-30", 1, 1],
            ["2024-03-31", 4, 4],
            ["2024-04-01", 1, 1],
        ]
        assert visits(berlin, dt.date(2024, 10, 26), dt.date(2024, 10, 28)) == [
            ["2024-10-26", 1, 1],
            ["2024-10-27", 4, 4],
            ["2024-10-28", 1, 1],
        ]
        assert visits(kolkata, dt.date(2024, 3, 30), dt.date(2024, 4, 1)) == [
            ["2024-03-30", 1, 1],
            ["2024-03-31", 2, 2],
            ["2024-04-01", 1, 1],
        ]
        assert summary(berlin, dt.date(2024, 3, 31)) == [[4, 4, 4, 1, 0]]
        assert summary(berlin, dt.date(2024, 10, 27)) == [[4, 4, 4, 1, 0]]
        assert summary(kolkata, dt.date(2024, 3, 31)) == [[2, 2, 2, 1, 0]]
        documents = run_query(
            get_query("public", "documents"),
            sites[kolkata],
            dt.date(2024, 3, 31),
            dt.date(2024, 3, 31),
        )
        assert documents.data == [["/p", None, 2, 2]]
