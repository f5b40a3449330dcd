"""Filters (contract section 9): parsing, the template helper, and every built-in report
narrowed by every filter on every database, against answers computed in Python."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from crumby import accounts, clock, create_app
from crumby.cli import cli
from crumby.database import _session_attributes, ensure_schema
from crumby.extensions import db
from crumby.ingest.sessions import ENTRY_COLUMNS, restitch, restitch_visitors
from crumby.models import Event, Visit
from crumby.reporting import get_query, run_query
from crumby.reporting.discovery import BUILTIN_FOLDER
from crumby.reporting.filters import (
    MAX_LENGTH,
    NAMES,
    NONE,
    FilterError,
    parse_filters,
    uses_filters,
)
from crumby.reporting.rendering import render
from crumby.sites import SiteInfo
from tests import report_data as rd
from tests import upgrades

PUBLIC = sorted(p.stem for p in (BUILTIN_FOLDER / "public").glob("*.sql"))
PRIVATE = sorted(p.stem for p in (BUILTIN_FOLDER / "private").glob("*.sql"))
REPORTS = [("public", name) for name in PUBLIC] + [("private", name) for name in PRIVATE]
#: the reports of the seed in tests/report_data.py (goals and funnels have their own seed)
MATRIX = [(scope, name) for scope, name in REPORTS if name not in ("goals", "funnel")]
#: reports whose rows come in a fixed order: compared as they are
ORDERED = {"visits", "sessions", "summary", "realtime"}
NOW = dt.datetime(2024, 3, 17, 9, 30)
CONTRACT_NAMES = {
    "page",
    "country",
    "browser",
    "os",
    "device",
    "language",
    "entry_page",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
}


# ---- parsing ----------------------------------------------------------------------------


def test_every_contract_filter_is_a_parameter_plus_region_and_city():
    assert set(NAMES) == CONTRACT_NAMES | {"region", "city"}


@pytest.mark.parametrize("name", NAMES)
def test_each_filter_is_parsed_with_its_value_as_given(name):
    filters = parse_filters(MultiDict({name: "Some value", "days": "7", "site": "x"}))
    assert filters.as_dict() == {name: "Some value"}
    assert dict(filters) == {name: "Some value"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "value, reason",
    [("", "must not be empty"), ("x" * (MAX_LENGTH + 1), "longer than 1000"), ("a\x00b", "NUL")],
)
def test_a_bad_value_is_refused_naming_its_parameter(name, value, reason):
    with pytest.raises(FilterError) as caught:
        parse_filters(MultiDict({name: value}))
    assert f"filter {name} " in str(caught.value) and reason in str(caught.value)
    assert caught.value.parameter == name


def test_a_filter_given_twice_is_refused():
    with pytest.raises(FilterError, match="country is given 2 times"):
        parse_filters(MultiDict([("country", "DE"), ("country", "FR")]))


def test_the_longest_value_is_accepted_and_filters_combine_in_a_fixed_order():
    value = "é" * MAX_LENGTH
    filters = parse_filters({"utm_campaign": value, "page": "/", "country": NONE})
    assert list(filters) == ["page", "country", "utm_campaign"]
    assert filters["utm_campaign"] == value
    # (none) needs no bound value: it is IS NULL
    assert filters.bind_values() == {"f_page": "/", "f_utm_campaign": value}


def test_language_values_are_compared_with_ascii_letters_lower_cased():
    filters = parse_filters({"language": "EN-US", "browser": "Firefox"})
    assert filters.bind_values() == {"f_language": "en-us", "f_browser": "Firefox"}
    assert filters.as_dict()["language"] == "EN-US", "the answer repeats the value as given"


def test_no_filter_parameters_are_no_filters():
    assert not parse_filters(MultiDict({"days": "7", "Country": "DE"}))


# ---- the template helper ---------------------------------------------------------------

SITE = SiteInfo(id=3, host="shop.example")
DAY = dt.date(2024, 3, 1)


def _rendered(source: str, filters: dict, dialect: str = "sqlite"):
    return render(source, dialect, SITE, DAY, DAY, dt.datetime(2024, 3, 2), parse_filters(filters))


def test_the_helper_renders_bound_parameters_never_the_values():
    nasty = "x' OR 1=1; DROP TABLE visits; --"
    rendered = _rendered(
        "SELECT 1 FROM visits v WHERE v.site_id = :site_id {{ filters('v') }}",
        {"country": nasty, "source": nasty, "utm_medium": NONE},
    )
    assert nasty not in rendered.sql and "DROP" not in rendered.sql
    assert rendered.sql.endswith(
        "AND v.country = :f_country AND v.entry_source = :f_source AND v.entry_utm_medium IS NULL"
    )
    assert rendered.params["f_country"] == rendered.params["f_source"] == nasty
    assert rendered.filtered


def test_without_filters_the_helper_renders_nothing():
    rendered = _rendered("SELECT 1 FROM visits v WHERE 1 = 1{{ filters('v') }}", {})
    assert rendered.sql == "SELECT 1 FROM visits v WHERE 1 = 1"
    assert rendered.filtered, "the query honours filters even when none are active"


def test_view_filters_read_the_views_own_columns_or_for_sessions_the_entry_views():
    source = "SELECT{{ filters('v') }} |{{ filters('v', by='sessions') }}"
    filters = {"page": "/a", "language": "de", "os": "Linux", "region": "Bayern", "city": "Ulm"}
    views, sessions = _rendered(source, filters).sql.removeprefix("SELECT").split(" |")
    assert views == (
        " AND v.doc_path = :f_page AND v.platform = :f_os AND lower(v.lang) = :f_language"
        " AND v.subdivision_1 = :f_region AND v.city = :f_city"
    )
    assert sessions == (
        " AND v.entry_page = :f_page AND v.entry_os = :f_os"
        " AND lower(v.entry_language) = :f_language"
        " AND v.entry_region = :f_region AND v.entry_city = :f_city"
    )


def test_the_visitors_reading_keeps_rows_of_visitors_with_a_matching_view_in_the_range():
    rendered = _rendered("{{ filters('e', by='visitors') }}", {"browser": "Firefox"})
    assert rendered.sql == (
        "AND e.cid IN (SELECT fv.cid FROM visits fv WHERE fv.site_id = :site_id"
        " AND fv.datetime >= :t0 AND fv.datetime < :t1_next AND fv.is_bot = FALSE"
        " AND fv.browser = :f_browser)"
    )
    assert {"site_id", "t0", "t1_next", "f_browser"} <= set(rendered.params)


def test_mysql_compares_bytes_not_its_case_insensitive_collation():
    rendered = _rendered("{{ filters('v') }}", {"country": "de"}, dialect="mysql")
    assert "CAST(v.country AS BINARY) = CAST(:f_country AS BINARY)" in rendered.sql


def test_a_template_may_read_the_active_filters_as_a_mapping():
    rendered = _rendered(
        "SELECT {% if 'country' in filters %}'{{ filters.country | length }}'{% endif %}",
        {"country": "DE"},
    )
    assert rendered.sql == "SELECT '2'"


def test_an_unknown_reading_is_a_template_error():
    with pytest.raises(ValueError, match="views, sessions, events, visitor_days or visitors"):
        _rendered("{{ filters('v', by='pages') }}", {})


@pytest.mark.parametrize(
    "source, expected",
    [
        ("SELECT 1 WHERE 1 = 1 {{ filters('v') }}", True),
        ("{% set f = filters('v', by='sessions') %}SELECT 1", True),
        ("SELECT 1 -- filters are ignored here", False),
        ("SELECT 1 WHERE {{ day('v.datetime') }} = :t0", False),
    ],
)
def test_a_query_uses_filters_when_its_template_code_names_them(source, expected):
    assert uses_filters(source) is expected


def test_every_built_in_query_uses_the_helper():
    for scope, name in REPORTS:
        source = (BUILTIN_FOLDER / scope / f"{name}.sql").read_text()
        assert "filters(" in source or "visitor_rows(" in source, f"{scope}/{name}"


# ---- every report, every filter, every database ------------------------------------------

CASES = [
    {"page": "/pricing"},
    {"country": "DE"},
    {"browser": "Firefox"},
    {"os": "Linux"},
    {"device": "mobile"},
    {"language": "en-us"},
    {"region": "Berlin"},
    {"city": "San Jose"},
    {"entry_page": "/blog/one"},
    {"source": "google.com"},
    {"source": "(direct)"},
    {"utm_source": "newsletter"},
    {"utm_medium": "cpc"},
    {"utm_campaign": "spring"},
    # (none) matches a missing value
    {"country": NONE},
    {"browser": NONE},
    {"language": NONE},
    {"utm_campaign": NONE},
    {"region": NONE},
    # case of a language tag does not matter; of anything else it does
    {"language": "EN-us"},
    {"country": "de"},
    # several filters combine with AND
    {"country": "DE", "browser": "Firefox", "source": "(direct)"},
    {"page": "/pricing", "utm_source": "newsletter", "device": NONE},
    {"entry_page": "/", "os": "Windows", "language": "de-de"},
]


def _case_id(case: dict) -> str:
    return "&".join(f"{k}={v}" for k, v in case.items())


@pytest.fixture
def seeded(app):
    clock.pin(app, NOW)
    with app.app_context():
        seed = rd.build_seed(NOW)
        rd.insert(seed)
    return seed


def _approx(rows):
    return [[pytest.approx(v, abs=1e-3) if isinstance(v, float) else v for v in r] for r in rows]


def _expected(scope: str, name: str, seed: rd.Seed, filters: dict) -> list[list]:
    key = name if scope == "public" else f"private/{name}"
    return rd.expect(key, seed, rd.T0, rd.T1, "UTC", filters=filters)


def _sort_key(row: list) -> str:
    return repr([round(v, 6) if isinstance(v, float) else v for v in row])


def _assert_same(scope: str, name: str, data: list, expected: list, where: str) -> None:
    if name in ORDERED and scope == "public":
        assert data == _approx(expected), where
    else:
        # averages may differ in their last bits between a database and Python
        assert sorted(data, key=_sort_key) == _approx(sorted(expected, key=_sort_key)), where


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_report_honours_the_filters(app, seeded, case):
    filters = parse_filters(case)
    narrowed = 0
    with app.app_context():
        for scope, name in MATRIX:
            query = get_query(scope, name)
            result = run_query(query, seeded.site, rd.T0, rd.T1, filters, use_cache=False)
            assert result.filtered
            expected = _expected(scope, name, seeded, case)
            _assert_same(scope, name, result.data, expected, f"{scope}/{name} {case}")
            if expected != _expected(scope, name, seeded, {}):
                narrowed += 1
    assert narrowed >= 10, f"the filter narrowed only {narrowed} reports: a weak test case"


def test_the_seed_has_something_for_every_case(seeded):
    """Each case matches some views but not all, so each really narrows (but ``de``)."""
    entries = rd.entry_views(seeded)
    rows = rd.in_range(seeded.visits)
    for case in CASES:
        matching = [r for r in rows if rd.matches(r, case, entries)]
        if case == {"country": "de"}:
            assert not matching, "codes are upper-case: de is no country"
        else:
            assert 0 < len(matching) < len(rows), case


def test_a_source_without_a_readable_host_is_none(app):
    clock.pin(app, NOW)
    when = dt.datetime.combine(rd.T0, dt.time(10))
    seed = rd.Seed(now=NOW)
    rng = __import__("random").Random(3)
    seed.visits = [
        rd._visit(rng, "a", when, referrer="android-app:com.example", doc_uri=rd.SITE + "/"),
        rd._visit(rng, "a", when + dt.timedelta(minutes=2), referrer="https://www.ex.org/"),
        rd._visit(rng, "b", when, referrer="https://www.ex.org/x", doc_uri=rd.SITE + "/"),
    ]
    with app.app_context():
        rd.insert(seed)
        summary = get_query("public", "summary")
        none = run_query(summary, seed.site, rd.T0, rd.T1, parse_filters({"source": NONE}))
        ex = run_query(summary, seed.site, rd.T0, rd.T1, parse_filters({"source": "ex.org"}))
    # visitor a's session came from no readable host; its second view's referrer does not count
    assert none.data[0][:3] == [1, 2, 1]
    assert ex.data[0][:3] == [1, 1, 1]


# ---- the API ------------------------------------------------------------------------------


@pytest.fixture
def token(app) -> str:
    with app.app_context():
        accounts.add_user("ann", "a long password")
        return accounts.create_token("ann")


RANGE = {"from": rd.T0.isoformat(), "to": rd.T1.isoformat()}


def test_the_json_answer_repeats_the_active_filters(client, seeded):
    answer = client.get("/api/public/documents", query_string={**RANGE, "country": "DE"})
    body = answer.get_json()
    assert answer.status_code == 200
    assert body["filters"] == {"country": "DE"}
    assert body["ignores_filters"] is False
    assert sorted(body["data"], key=repr) == sorted(
        _expected("public", "documents", seeded, {"country": "DE"}), key=repr
    )
    plain = client.get("/api/public/documents", query_string=RANGE).get_json()
    assert plain["filters"] == {}


def test_csv_is_filtered_like_json(client, seeded):
    params = {**RANGE, "browser": "Firefox", "utm_campaign": NONE}
    csv = client.get("/api/public/browsers", query_string={**params, "format": "csv"}).text
    json_rows = client.get("/api/public/browsers", query_string=params).get_json()["data"]
    lines = csv.strip().splitlines()
    assert lines[0] == "browser,visitors"
    assert [line.split(",") for line in lines[1:]] == [[b, str(n)] for b, n in json_rows]
    assert [b for b, _n in json_rows] == ["Firefox"]


def test_private_reports_take_filters_too(client, seeded, token):
    params = {**RANGE, "source": "google.com"}
    answer = client.get(
        "/api/private/events",
        query_string=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    assert answer.get_json()["filters"] == {"source": "google.com"}
    expected = _expected("private", "events", seeded, {"source": "google.com"})
    assert sorted(answer.get_json()["data"], key=repr) == sorted(expected, key=repr)


@pytest.mark.parametrize("name", NAMES)
def test_bad_filter_values_answer_400_json_naming_the_parameter(client, seeded, name):
    for value in ("", "x" * (MAX_LENGTH + 1)):
        answer = client.get("/api/public/summary", query_string={name: value})
        assert answer.status_code == 400, (name, len(value))
        body = answer.get_json()
        assert name in body["error"] and body["parameter"] == name
    fine = client.get("/api/public/summary", query_string={name: "x" * MAX_LENGTH})
    assert fine.status_code == 200
    assert fine.get_json()["data"][0][:3] == [0, 0, 0]


def test_the_cache_keeps_filtered_and_unfiltered_answers_apart(app, client, seeded):
    app.config["REPORT_CACHE_SECONDS"] = 60
    url = "/api/public/summary"
    plain = client.get(url, query_string=RANGE).get_json()["data"]
    german = client.get(url, query_string={**RANGE, "country": "DE"}).get_json()["data"]
    french = client.get(url, query_string={**RANGE, "country": "FR"}).get_json()["data"]
    assert plain == _approx(_expected("public", "summary", seeded, {}))
    assert german == _approx(_expected("public", "summary", seeded, {"country": "DE"}))
    assert french == _approx(_expected("public", "summary", seeded, {"country": "FR"}))
    assert len({repr(plain), repr(german), repr(french)}) == 3


CUSTOM = """-- title: Raw count
SELECT COUNT(*) AS views FROM visits v WHERE v.site_id = :site_id
  AND v.datetime >= :t0 AND v.datetime < :t1_next AND v.is_bot = FALSE
"""


def test_a_custom_query_without_the_helper_works_and_says_it_ignores_filters(
    app, client, seeded, tmp_path
):
    folder = tmp_path / "queries"
    (folder / "public").mkdir(parents=True)
    (folder / "public" / "raw_count.sql").write_text(CUSTOM)
    (folder / "public" / "narrow_count.sql").write_text(
        CUSTOM.replace("FALSE", "FALSE {{ filters('v') }}")
    )
    app.config["QUERY_FOLDER"] = str(folder)
    listing = {q["name"]: q for q in client.get("/api/public").get_json()["queries"]}
    assert listing["raw_count"]["ignores_filters"] is True
    assert listing["narrow_count"]["ignores_filters"] is False
    assert all(not q["ignores_filters"] for n, q in listing.items() if n in PUBLIC)
    params = {**RANGE, "country": "DE"}
    raw = client.get("/api/public/raw_count", query_string=params).get_json()
    narrow = client.get("/api/public/narrow_count", query_string=params).get_json()
    total = len(rd.in_range(seeded.visits))
    german = len([r for r in rd.in_range(seeded.visits) if r["country"] == "DE"])
    assert (raw["data"], raw["filters"], raw["ignores_filters"]) == (
        [[total]],
        {"country": "DE"},
        True,
    )
    assert (narrow["data"], narrow["ignores_filters"]) == ([[german]], False)


def test_a_filtered_answer_is_fresh_after_new_hits(app, client, seeded):
    """Filtered answers are cached no longer than unfiltered ones (contract: 10 seconds)."""
    app.config["REPORT_CACHE_SECONDS"] = 60
    url = "/api/public/realtime"
    first = client.get(url, query_string={"country": "(none)"})
    assert first.status_code == 200
    assert int(first.headers["Cache-Control"].split("max-age=")[1]) <= 10


def test_tables_are_intact_after_filtered_queries(app, client, seeded):
    with app.app_context():
        before = (
            db.session.scalar(sa.select(sa.func.count()).select_from(Visit)),
            db.session.scalar(sa.select(sa.func.count()).select_from(Event)),
        )
    for name in NAMES:
        client.get("/api/public/summary", query_string={name: "x'); DELETE FROM visits; --"})
    with app.app_context():
        db.session.remove()
        after = (
            db.session.scalar(sa.select(sa.func.count()).select_from(Visit)),
            db.session.scalar(sa.select(sa.func.count()).select_from(Event)),
        )
    assert before == after and before[0] > 0


def test_the_api_page_documents_the_filters(client):
    page = client.get("/api").text
    for name in NAMES:
        assert re.search(rf"\b{name}\b", page), name
    assert "(none)" in page


# ---- injection through every filter, on every database -----------------------------------

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NASTY = st.sampled_from(
    [
        "' OR 1=1 --",
        "DE' OR '1'='1",
        "x'); DROP TABLE visits; --",
        '"; DELETE FROM events; --',
        "\\'; SELECT 1; --",
        ":f_country",
        ":site_id",
        "%",
        "_",
        "{{ config }}",
        "{% for x in () %}{% endfor %}",
        "(none)",
        "(NONE)",
        "(direct)",
        " DE",
        "DE ",
        "de",
        "\x00",
        "",
        "x" * (MAX_LENGTH + 1),
        "é" * MAX_LENGTH,
        "😀",
        "/pricing\n",
    ]
)
REAL = st.sampled_from(
    [
        "DE",
        "Firefox",
        "Linux",
        "mobile",
        "en-us",
        "/pricing",
        "/",
        "google.com",
        "newsletter",
        "cpc",
    ]
)
VALUES = st.one_of(NASTY, REAL, st.text(max_size=20))


def _counts(app) -> tuple[int, int]:
    with app.app_context():
        db.session.remove()
        return (
            db.session.scalar(sa.select(sa.func.count()).select_from(Visit)),
            db.session.scalar(sa.select(sa.func.count()).select_from(Event)),
        )


@FUZZ
@given(
    params=st.dictionaries(st.sampled_from(NAMES), VALUES, min_size=1, max_size=3),
    report=st.sampled_from(MATRIX),
)
def test_any_filter_values_answer_the_right_rows_or_400(app, client, seeded, token, params, report):
    scope, name = report
    stored = (len(seeded.visits), len(seeded.events))
    answer = client.get(
        f"/api/{scope}/{name}",
        query_string={**RANGE, **params},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.is_json, (params, answer.status_code)
    body = answer.get_json()
    try:
        parse_filters(params)
    except FilterError as exc:
        assert answer.status_code == 400, (params, body)
        assert body["error"] == str(exc) and body["parameter"] == exc.parameter
    else:
        assert answer.status_code == 200, (params, body)
        assert body["filters"] == params
        expected = _expected(scope, name, seeded, params)
        _assert_same(scope, name, body["data"], expected, f"{scope}/{name} {params!r}")
    assert _counts(app) == stored, "no filter value changes the tables"


# ---- the stored session attributes: migration and restitch ---------------------------------


def test_the_session_attributes_step_fills_an_older_database(other_database_url, tmp_path):
    settings = upgrades.config(other_database_url, tmp_path)
    old = create_app(settings)
    ensure_schema(old)
    seed = rd.build_seed(NOW)
    with old.app_context():
        rd.insert(seed)
        with db.engine.begin() as connection:
            for column in ENTRY_COLUMNS:
                connection.exec_driver_sql(f"ALTER TABLE visits DROP COLUMN {column}")
            upgrades.rewind(connection, _session_attributes)
    upgrades.close(old)

    upgraded = upgrades.upgraded(settings, NOW)
    with upgraded.app_context():
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("visits")}
        assert set(ENTRY_COLUMNS) <= columns
        for case in CASES[::3] + CASES[-3:]:
            for scope, name in (
                ("public", "summary"),
                ("public", "documents"),
                ("private", "events"),
            ):
                result = run_query(
                    get_query(scope, name), seed.site, rd.T0, rd.T1, parse_filters(case)
                )
                expected = _expected(scope, name, seed, case)
                _assert_same(scope, name, result.data, expected, f"{name} {case} after the upgrade")
        db.session.remove()
        db.engine.dispose()


def _entries(app, cid: str) -> list[tuple]:
    with app.app_context():
        visits = Visit.__table__
        rows = db.session.execute(
            sa.select(visits.c.session_seq, visits.c.entry_page, visits.c.entry_source)
            .where(visits.c.cid == cid)
            .order_by(visits.c.datetime)
        )
        return [tuple(row) for row in rows]


def test_restitching_after_a_deletion_gives_the_session_its_new_entry(app):
    clock.pin(app, NOW)
    when = dt.datetime.combine(rd.T0, dt.time(10))
    rows = [
        {
            "cid": "a",
            "datetime": when,
            "doc_uri": rd.SITE + "/in",
            "referrer": "https://www.g.com/",
        },
        {
            "cid": "a",
            "datetime": when + dt.timedelta(minutes=5),
            "doc_uri": rd.SITE + "/next",
            "referrer": rd.SITE + "/in",
        },
        {
            "cid": "a",
            "datetime": when + dt.timedelta(minutes=9),
            "doc_uri": rd.SITE + "/last",
            "referrer": "https://news.example/",
        },
    ]
    with app.app_context():
        rd.insert(rd.Seed(visits=rows))
    # every view carries its session's entry: the first one's path and source
    assert _entries(app, "a") == [(1, "/in", "g.com"), (2, "/in", "g.com"), (3, "/in", "g.com")]
    with app.app_context(), db.engine.begin() as connection:
        visits = Visit.__table__
        site_id = connection.execute(sa.select(visits.c.site_id).limit(1)).scalar()
        connection.execute(visits.delete().where(visits.c.doc_path == "/in"))
        restitch_visitors(connection, [(site_id, "a")])
    # the first view left is the entry now; its referrer is a page of the site: (direct)
    assert _entries(app, "a") == [(1, "/next", "(direct)"), (2, "/next", "(direct)")]


def test_a_view_without_a_visitor_id_is_its_own_session_with_its_own_attributes(app):
    clock.pin(app, NOW)
    when = dt.datetime.combine(rd.T0, dt.time(10))
    row = {"cid": None, "datetime": when, "doc_uri": rd.SITE + "/x", "referrer": "https://b.org/"}
    with app.app_context():
        rd.insert(rd.Seed(visits=[row, {**row, "datetime": when + dt.timedelta(minutes=1)}]))
        with db.engine.begin() as connection:
            connection.execute(Visit.__table__.update().values(entry_page=None, entry_source=None))
            assert restitch(connection, everything=True) == 2
    assert _entries(app, None) == [(1, "/x", "b.org"), (1, "/x", "b.org")]


def test_crumby_query_takes_filters(app, runner, seeded):
    result = runner.invoke(
        cli,
        ["query", "summary", "--from", "2024-02-26", "--to", "2024-03-03", "--format", "json"]
        + ["--filter", "country=DE", "--filter", "source=(direct)"],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["filters"] == {"country": "DE", "source": "(direct)"}
    expected = _expected("public", "summary", seeded, {"country": "DE", "source": "(direct)"})
    assert body["data"] == _approx(expected)
    for bad in ("country", "colour=red", "country="):
        refused = runner.invoke(cli, ["query", "summary", "--filter", bad])
        assert refused.exit_code != 0 and "Traceback" not in refused.output, bad
        assert "filter" in refused.output


def test_the_readme_example_of_a_filtered_query_runs_as_it_says(app, client, seeded, tmp_path):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    source = re.search(r"```sql\n(-- title: Pages from campaigns\n.*?)```", readme, re.S).group(1)
    folder = tmp_path / "queries"
    (folder / "public").mkdir(parents=True)
    (folder / "public" / "campaign_pages.sql").write_text(source)
    app.config["QUERY_FOLDER"] = str(folder)
    listing = {q["name"]: q for q in client.get("/api/public").get_json()["queries"]}
    assert listing["campaign_pages"]["row_filter"] == {"page": "page"}
    assert listing["campaign_pages"]["ignores_filters"] is False
    case = {"country": "DE", "source": "google.com"}
    body = client.get("/api/public/campaign_pages", query_string={**RANGE, **case}).get_json()
    entries = rd.entry_views(seeded)
    rows = [
        r
        for r in rd.in_range(seeded.visits)
        if rd.matches(r, case, entries) and entries[id(r)]["utm_campaign"] is not None
    ]
    visitors: dict[str, set] = {}
    for r in rows:
        visitors.setdefault(rd.path(r["doc_uri"]), set()).add(r["cid"])
    assert rows, "the example finds something in the seed"
    expected = [[page, len(cids)] for page, cids in visitors.items()]
    assert sorted(body["data"], key=repr) == sorted(expected, key=repr)


# ---- goals and funnels ----------------------------------------------------------------------

GOAL_CASES = [{"page": "/pricing"}, {"entry_page": "/"}, {"entry_page": "/docs", "page": "/docs"}]


@pytest.fixture
def goal_seed(app):
    """The goal reports' seed, goals and funnels (as tests/test_goal_reports.py stores them)."""
    from crumby.goals import add_funnel, add_goal
    from tests import goal_data as gd

    clock.pin(app, gd.NOW)
    with app.app_context():
        seed = gd.build()
        rd.insert(seed, gd.HOST, gd.ZONE, public=False)
        with db.engine.begin() as connection:
            for goal in gd.GOALS:
                event = goal.target if goal.kind == "event" else None
                page = goal.target if goal.kind == "page" else None
                add_goal(connection, gd.HOST, goal.name, event=event, page=page)
            for name, steps in gd.FUNNELS.items():
                add_funnel(connection, gd.HOST, name, steps)
    return seed


def _goal_filtered_seed(seed: rd.Seed, case: dict) -> tuple[rd.Seed, rd.Seed]:
    """The goal seed with only the matching views (goals) and only matching sessions (funnel)."""
    for row in seed.visits:  # the goal seed's views have a path and nothing else
        for key in ("referrer", "utm_source", "utm_medium", "utm_campaign"):
            row.setdefault(key, None)
    entries = rd.entry_views(seed)
    views = [r for r in seed.visits if r["is_bot"] or rd.matches(r, case, entries)]
    # events count by the page they were sent from and the session they fall in
    events = [e for e in seed.events if rd.event_matches(e, case, seed, entries)]
    goals = rd.Seed(visits=views, events=events)
    whole = [r for r in seed.visits if r["is_bot"] or rd.matches(r, case, entries, whole=True)]
    return goals, rd.Seed(visits=whole, events=seed.events)


@pytest.mark.parametrize("case", GOAL_CASES, ids=_case_id)
def test_goals_and_funnels_honour_the_filters(app, goal_seed, case):
    from crumby.reporting.parameters import resolve
    from tests import goal_data as gd

    goals_seed, funnel_seed = _goal_filtered_seed(goal_seed, case)
    filters = parse_filters(case)
    with app.app_context():
        goals = run_query(get_query("private", "goals"), goal_seed.site, gd.T0, gd.T1, filters)
        expected = gd.expect_goals(goals_seed, gd.GOALS)
        assert goals.data == _approx(expected), case
        assert expected != gd.expect_goals(goal_seed, gd.GOALS), "the filter narrows"
        query = get_query("private", "funnel")
        for name, steps in gd.FUNNELS.items():
            params = resolve(query, goal_seed.site, {"funnel": name})
            funnel = run_query(query, goal_seed.site, gd.T0, gd.T1, filters, params=params)
            assert funnel.data == _approx(gd.expect_funnel(funnel_seed, steps)), (case, name)
