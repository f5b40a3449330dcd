"""The reporting API as a script or a dashboard page uses it (contract section 6)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re

import pytest
from flask import Flask
from sqlalchemy import func, select

from crumby import accounts, clock, create_app, ingest
from crumby.extensions import db
from crumby.ingest.writer import stop_writer
from crumby.models import User, Visit
from crumby.reporting.discovery import BUILTIN_FOLDER
from crumby.reporting.filters import NAMES as FILTER_NAMES
from crumby.sites import add_site
from tests import report_data as rd

PUBLIC = sorted(p.stem for p in (BUILTIN_FOLDER / "public").glob("*.sql"))
PRIVATE = sorted(p.stem for p in (BUILTIN_FOLDER / "private").glob("*.sql"))
RANGE = {"from": rd.T0.isoformat(), "to": rd.T1.isoformat()}
#: "now" for every app of these tests (the seed's recent rows sit just before it)
NOW = dt.datetime(2024, 3, 1, 12)


def make_app(database_url: str, tmp_path, now: dt.datetime = NOW, **config) -> Flask:
    """An app on the test database with extra settings (QUERY_FOLDER, CORS, limits).

    Its clock is pinned to ``now``, so that no answer depends on the wall clock.
    """
    settings = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "GEOIP2_DATABASE_NAME": str(tmp_path / "none.mmdb"),
        **config,
    }
    made = create_app(settings)
    clock.pin(made, now)
    return made


@pytest.fixture
def token(app) -> str:
    with app.app_context():
        accounts.add_user("ann", "pw")
        return accounts.create_token("ann")


@pytest.fixture
def site(app):
    """The only site, public, in UTC (the API needs a site); the app's clock is pinned."""
    clock.pin(app, NOW)
    with app.app_context(), db.engine.begin() as connection:
        return add_site(connection, rd.HOST, "UTC", public=True)


@pytest.fixture
def seeded(app, site):
    with app.app_context():
        seed = rd.build_seed(NOW)
        rd.insert(seed)
    return seed


# ---- listings -----------------------------------------------------------------------------


def test_public_listing_names_every_public_query_with_its_url(client):
    answer = client.get("/api/public")
    assert answer.status_code == 200
    queries = answer.get_json()["queries"]
    assert sorted(q["name"] for q in queries) == PUBLIC
    for q in queries:
        assert q["url"] == f"/api/public/{q['name']}"
        assert set(q) >= {"name", "url", "title", "description", "chart", "order"}
        assert q["chart"] in ("line", "bar", "pie", "map", "table", "kpi")
    assert [(q["order"], q["name"]) for q in queries] == sorted(
        (q["order"], q["name"]) for q in queries
    )


def test_private_listing_needs_login_or_token(client, token):
    refused = client.get("/api/private")
    assert refused.status_code == 401
    assert "error" in refused.get_json()
    assert client.get("/api/private", headers={"Authorization": "Bearer nope"}).status_code == 401
    allowed = client.get("/api/private", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200
    assert sorted(q["name"] for q in allowed.get_json()["queries"]) == PRIVATE


@pytest.mark.parametrize("name", PRIVATE)
def test_private_results_answer_401_json_without_credentials(client, site, name):
    answer = client.get(f"/api/private/{name}")
    assert answer.status_code == 401
    assert answer.is_json and "error" in answer.get_json()
    assert "Location" not in answer.headers


def test_a_token_made_by_crumby_token_reads_private_reports(client, runner, seeded):
    from crumby.cli import cli

    assert runner.invoke(cli, ["adduser", "bob", "secret"]).exit_code == 0
    made = runner.invoke(cli, ["token", "bob"])
    assert made.exit_code == 0
    value = made.output.strip().splitlines()[-1]
    answer = client.get(
        "/api/private/events", query_string=RANGE, headers={"Authorization": f"Bearer {value}"}
    )
    assert answer.status_code == 200
    names = {row[0] for row in answer.get_json()["data"]}
    assert {"signup", "click"} <= names


def test_a_logged_in_session_reads_private_reports(app, client, seeded):
    with app.app_context():
        user_id = accounts.add_user("cat", "pw").get_id()
    with client.session_transaction() as session:
        session["_user_id"] = user_id
        session["_fresh"] = True
    answer = client.get("/api/private/referrers", query_string=RANGE)
    assert answer.status_code == 200
    assert "(direct)" in {row[0] for row in answer.get_json()["data"]}


def test_a_deleted_users_token_stops_working(app, client, token):
    with app.app_context():
        accounts.delete_user("ann")
    assert (
        client.get("/api/private", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )


# ---- results ------------------------------------------------------------------------------


def test_result_has_columns_data_and_range(client, seeded):
    answer = client.get("/api/public/visits", query_string=RANGE)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["columns"] == ["date", "users", "views"]
    assert body["t0"] == "2024-02-26" and body["t1"] == "2024-03-03"
    assert body["name"] == "visits" and body["title"] == "Visits" and body["chart"] == "line"
    assert [row[0] for row in body["data"]] == [d.isoformat() for d in rd.days()]
    assert all(isinstance(row[1], int) and isinstance(row[2], int) for row in body["data"])
    assert sum(row[2] for row in body["data"]) == len(rd.in_range(seeded.visits))


def test_default_range_is_the_last_30_days(client, site):
    body = client.get("/api/public/visits").get_json()
    assert body["t1"] == NOW.date().isoformat()
    assert body["t0"] == (NOW.date() - dt.timedelta(days=29)).isoformat()
    assert len(body["data"]) == 30


def test_days_counts_back_from_to(client, site):
    body = client.get("/api/public/visits?days=7&to=2024-03-03").get_json()
    assert (body["t0"], body["t1"]) == ("2024-02-26", "2024-03-03")
    assert len(body["data"]) == 7


def test_t0_and_t1_are_aliases(client, site):
    body = client.get("/api/public/visits?t0=2024-02-28&t1=2024-03-01").get_json()
    assert [row[0] for row in body["data"]] == ["2024-02-28", "2024-02-29", "2024-03-01"]


@pytest.mark.parametrize(
    "query",
    [
        "from=2024-03-01",  # from without to
        "to=2024-03-01",  # to without from
        "t0=2024-03-01",
        "from=2024-03-05&to=2024-03-01",  # from after to
        "from=2024-3-01&to=2024-03-05",
        "from=2023-02-29&to=2023-03-05",  # not a real day
        "from=2024-13-01&to=2024-12-05",
        "from=1999-12-31&to=2000-01-05",  # outside the calendar
        "from=2099-12-31&to=2100-01-01",
        "from=2024-03-01%27%20OR%201=1--&to=2024-03-05",
        "days=-1",
        "days=1.5",
        "days=abc",
        "days=",
        "days=%D9%A3",  # an Arabic-Indic digit three
        "days=9999999",
        "days=999999",  # reaches before 2000
        "days=7&from=2024-03-01&to=2024-03-05",
        "format=xml",
    ],
)
def test_bad_parameters_answer_400_json(client, site, query):
    answer = client.get(f"/api/public/visits?{query}")
    assert answer.status_code == 400, query
    assert answer.is_json and answer.get_json()["error"]


def test_unknown_query_is_404_json(client, site):
    answer = client.get("/api/public/no_such_report")
    assert answer.status_code == 404
    assert "no_such_report" in answer.get_json()["error"]
    assert client.get("/api/secret").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/public/events",  # a private query through the public path
        "/api/public/..%2fprivate%2fevents",
        "/api/public/%2e%2e%2fprivate%2fevents",
        "/api/public/visits.sql",
        "/api/public/.visits",
        "/api/public/..%5c..%5csettings",
        "/api/public/%00visits",
    ],
)
def test_paths_never_reach_private_or_outside_files(client, site, path):
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.is_json


def test_csv_has_a_header_and_neutralised_formulas(client, seeded):
    answer = client.get("/api/public/documents", query_string={**RANGE, "format": "csv"})
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["page", "title", "views", "visitors"]
    formula = [r for r in rows if "HYPERLINK" in r[0]]
    assert formula == [['\'=HYPERLINK("http://x")', "'+SUM(A1)", "1", "1"]]
    for row in rows[1:]:
        assert not row[0].startswith(("=", "+", "-", "@"))


def test_csv_of_visits_matches_json(client, seeded):
    as_json = client.get("/api/public/visits", query_string=RANGE).get_json()
    text = client.get("/api/public/visits", query_string={**RANGE, "format": "csv"}).get_data(
        as_text=True
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1:] == [[str(v) for v in row] for row in as_json["data"]]


# ---- QUERY_FOLDER -------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    for scope in ("public", "private"):
        (tmp_path / "queries" / scope).mkdir(parents=True)
    return tmp_path / "queries"


@pytest.fixture
def folder_client(database_url, tmp_path, folder, app, site):
    custom = make_app(database_url, tmp_path, QUERY_FOLDER=str(folder), REPORT_TIMEOUT_SECONDS=1)
    return custom.test_client()


def test_new_changed_and_deleted_files_take_effect_without_restart(folder_client, folder):
    path = folder / "public" / "answer.sql"
    assert folder_client.get("/api/public/answer").status_code == 404
    path.write_text("-- title: The answer\nSELECT 42 AS answer\n")
    listing = folder_client.get("/api/public").get_json()["queries"]
    assert {"name": "answer", "title": "The answer"}.items() <= next(
        q for q in listing if q["name"] == "answer"
    ).items()
    assert folder_client.get("/api/public/answer").get_json()["data"] == [[42]]
    path.write_text("SELECT 43 AS answer, 1 AS other\n")
    assert folder_client.get("/api/public/answer").get_json()["data"] == [[43, 1]]
    path.unlink()
    assert folder_client.get("/api/public/answer").status_code == 404


def test_a_same_named_file_overrides_the_built_in(folder_client, folder):
    (folder / "public" / "visits.sql").write_text("-- chart: bar\nSELECT 'mine' AS label, 1 AS n\n")
    body = folder_client.get("/api/public/visits").get_json()
    assert body["data"] == [["mine", 1]] and body["chart"] == "bar"
    names = [q["name"] for q in folder_client.get("/api/public").get_json()["queries"]]
    assert names.count("visits") == 1


def test_a_private_folder_query_is_not_public(folder_client, folder):
    (folder / "private" / "secret.sql").write_text("SELECT 'hidden' AS s\n")
    assert folder_client.get("/api/public/secret").status_code == 404
    assert folder_client.get("/api/private/secret").status_code == 401


def test_unsafe_file_names_are_not_queries(folder_client, folder):
    (folder / "public" / "has space.sql").write_text("SELECT 1 AS x\n")
    (folder / "public" / "dot.ted.sql").write_text("SELECT 1 AS x\n")
    names = {q["name"] for q in folder_client.get("/api/public").get_json()["queries"]}
    assert "has space" not in names and "dot.ted" not in names


def test_template_helpers_and_bound_range(folder_client, folder):
    (folder / "public" / "shape.sql").write_text(
        "SELECT '{{ t0 }}' AS t0, '{{ t1 }}' AS t1, '{{ t1_next }}' AS t1_next,\n"
        "       '{{ dialect }}' AS dialect, {{ day(':t0') }} AS bound_day,\n"
        "       {{ hour(':t1') }} AS bound_hour\n"
    )
    body = folder_client.get("/api/public/shape?from=2024-02-28&to=2024-02-29").get_json()
    row = dict(zip(body["columns"], body["data"][0], strict=True))
    assert row["t0"] == "2024-02-28" and row["t1"] == "2024-02-29"
    assert row["t1_next"] == "2024-03-01"
    assert row["dialect"] in ("sqlite", "mysql", "postgresql")
    assert row["bound_day"] == "2024-02-28"
    assert row["bound_hour"] == "2024-02-29T00:00:00Z"


def test_chart_is_inferred_when_not_declared(folder_client, folder):
    (folder / "public" / "by_day.sql").write_text("SELECT '2024-01-01' AS day, 3 AS n\n")
    (folder / "public" / "by_country.sql").write_text("SELECT 'DE' AS country, 3 AS n, 4 AS m\n")
    (folder / "public" / "bars.sql").write_text("SELECT 'x' AS label, 3 AS n\n")
    (folder / "public" / "wide.sql").write_text("SELECT 'x' AS a, 'y' AS b, 3 AS n\n")
    charts = {q["name"]: q["chart"] for q in folder_client.get("/api/public").get_json()["queries"]}
    assert (charts["by_day"], charts["by_country"], charts["bars"], charts["wide"]) == (
        "line",
        "map",
        "bar",
        "table",
    )
    assert folder_client.get("/api/public/bars").get_json()["chart"] == "bar"


# ---- safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM visits",
        "UPDATE visits SET doc_uri = 'x'",
        "INSERT INTO users (username, password, created_at) VALUES ('mallory', 'x', :t0)",
        "DROP TABLE visits",
        "DELETE FROM visits; SELECT 1",
        "WITH gone AS (DELETE FROM visits RETURNING id) SELECT count(*) FROM gone",
    ],
)
def test_a_query_file_cannot_change_data(app, folder_client, folder, seeded, sql):
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Visit))
    (folder / "public" / "evil.sql").write_text(sql + "\n")
    answer = folder_client.get("/api/public/evil")
    assert answer.status_code == 500
    assert "public/evil" in answer.get_json()["error"]
    with app.app_context():
        db.session.remove()
        assert db.session.scalar(select(func.count()).select_from(Visit)) == before
        assert db.session.scalar(select(User).where(User.username == "mallory")) is None
    # the connection went back to the pool writable: the app can still record data
    with folder_client.application.app_context():
        accounts.add_user("after-evil", "pw")
        assert accounts.find_user("after-evil") is not None


def test_a_slow_query_is_stopped_with_504(folder_client, folder, caplog):
    slow = "SELECT count(*) AS n FROM calendar a, calendar b, calendar c\n"
    (folder / "public" / "slow.sql").write_text(slow)
    caplog.set_level(logging.ERROR)
    started = dt.datetime.now()
    answer = folder_client.get("/api/public/slow")
    assert answer.status_code == 504
    assert "public/slow" in answer.get_json()["error"]
    assert (dt.datetime.now() - started).total_seconds() < 30
    assert "calendar a, calendar b" in caplog.text
    # the same pool still serves normal reports without the limit lingering
    assert folder_client.get("/api/public/visits").status_code == 200


SESSION_STATE = {
    "sqlite": ["PRAGMA query_only"],
    "mysql": [
        "SELECT @@session.tx_read_only",  # MariaDB; MySQL 8 calls it transaction_read_only
        "SELECT @@session.max_statement_time = @@global.max_statement_time",
        "SELECT @@session.max_length_for_sort_data = @@global.max_length_for_sort_data",
    ],
    "postgresql": ["SHOW transaction_read_only", "SHOW statement_timeout"],
}


def test_a_report_hands_its_connection_back_as_it_found_it(database_url, tmp_path, app, site):
    """Read-only mode, time limit and sort settings end with the report: hits share the pool."""
    one = make_app(
        database_url, tmp_path, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0}
    )

    def state() -> list:
        with one.app_context(), db.engine.connect() as conn:
            queries = SESSION_STATE[conn.dialect.name]
            return [conn.exec_driver_sql(q).scalar() for q in queries]

    before = state()
    assert one.test_client().get("/api/public/summary").status_code == 200
    assert state() == before
    # the hit is the registered site's, so it really is written through the same pool
    hit = {"dl": f"https://{rd.HOST}/after-report"}
    assert one.test_client().post("/visit", json=hit).status_code == 204
    stop_writer(one)  # the writer keeps its connection while hits come; the pool has one
    with one.app_context():
        stored = db.session.scalar(
            select(func.count()).select_from(Visit).where(Visit.doc_path == "/after-report")
        )
        assert stored == 1
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("SELECT FROM WHERE\n", "public/broken"),
        ("SELECT {{ day( }}\n", "template error"),
        ("SELECT {{ no_such_helper('x') }}\n", "template error"),
        ("SELECT {{ ''.__class__.__mro__ }}\n", "template error"),
        ("SELECT {{ cycler.__init__.__globals__ }}\n", "template error"),
        ("SELECT :unknown_parameter AS x\n", "public/broken"),
    ],
)
def test_a_broken_file_answers_500_json_naming_the_query(
    folder_client, folder, caplog, token, source, words
):
    (folder / "public" / "broken.sql").write_text(source)
    caplog.set_level(logging.ERROR)
    answer = folder_client.get("/api/public/broken", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 500
    body = answer.get_json()
    assert words in body["error"] and body["query"] == "public/broken"
    assert "public/broken" in caplog.text
    assert "Traceback" not in answer.get_data(as_text=True)


def test_a_broken_file_tells_anonymous_callers_which_query_failed_but_not_why(
    folder_client, folder, caplog
):
    (folder / "public" / "broken.sql").write_text("SELECT secret_column FROM no_such_table\n")
    caplog.set_level(logging.ERROR)
    answer = folder_client.get("/api/public/broken")
    assert answer.status_code == 500
    body = answer.get_json()
    assert body["query"] == "public/broken" and "public/broken" in body["error"]
    assert "no_such_table" not in body["error"] and "secret_column" not in body["error"]
    assert "no_such_table" in caplog.text  # the operator still sees why, in the log


# ---- cache --------------------------------------------------------------------------------


def test_public_results_are_cached_briefly(database_url, tmp_path, app, site):
    later = dt.datetime(2024, 6, 1, 12)  # the range is long past: kept REPORT_CACHE_SECONDS
    cached = make_app(database_url, tmp_path, now=later, REPORT_CACHE_SECONDS=60).test_client()
    uncached = make_app(database_url, tmp_path, now=later, REPORT_CACHE_SECONDS=0).test_client()
    url = "/api/public/visits?from=2024-03-01&to=2024-03-01"
    first = cached.get(url)
    assert first.get_json()["data"] == [["2024-03-01", 0, 0]]
    assert first.headers["Cache-Control"] == "public, max-age=60"
    assert uncached.get(url).get_json()["data"] == [["2024-03-01", 0, 0]]
    ingest.store(app, [{"cid": "x", "datetime": dt.datetime(2024, 3, 1, 9), "doc_uri": rd.SITE}])
    assert cached.get(url).get_json()["data"] == [["2024-03-01", 0, 0]]
    assert uncached.get(url).get_json()["data"] == [["2024-03-01", 1, 1]]
    # another range is another cache entry
    other = "/api/public/visits?from=2024-03-01&to=2024-03-02"
    assert cached.get(other).get_json()["data"][0] == ["2024-03-01", 1, 1]


def test_private_results_are_not_cached(app, client, token, site):
    url = "/api/private/events?from=2024-03-01&to=2024-03-01"
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(url, headers=headers).get_json()["data"] == []
    event = {"cid": "x", "name": "buy", "datetime": dt.datetime(2024, 3, 1, 9), "site_id": site.id}
    ingest.store(app, events=[event])
    answer = client.get(url, headers=headers)
    assert answer.get_json()["data"] == [["buy", "", 1, 1]]
    assert "no-store" in answer.headers["Cache-Control"]


# ---- CORS -----------------------------------------------------------------------------------


def test_cors_default_lets_any_origin_read_the_public_api(client, site):
    answer = client.get("/api/public/visits", headers={"Origin": "https://blog.example"})
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_wildcard_never_comes_with_credentials_on_the_private_api(client, token):
    answer = client.get(
        "/api/private",
        headers={"Origin": "https://blog.example", "Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_cors_with_listed_origins(database_url, tmp_path, app, site):
    client = make_app(
        database_url, tmp_path, CROSSDOMAIN_ORIGIN=["https://blog.example"]
    ).test_client()
    good = client.get("/api/private", headers={"Origin": "https://blog.example"})
    assert good.status_code == 401  # the 401 is readable by the allowed page
    assert good.headers["Access-Control-Allow-Origin"] == "https://blog.example"
    assert good.headers["Access-Control-Allow-Credentials"] == "true"
    public = client.get("/api/public/visits", headers={"Origin": "https://blog.example"})
    assert public.status_code == 200
    assert public.headers["Access-Control-Allow-Origin"] == "https://blog.example"
    assert "Access-Control-Allow-Credentials" not in public.headers
    evil = client.get("/api/public/visits", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers
    preflight = client.options(
        "/api/private/events",
        headers={
            "Origin": "https://blog.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()


# ---- documentation --------------------------------------------------------------------------


def test_api_page_documents_every_query_without_inline_code(client, token):
    answer = client.get("/api")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    site = re.search(r"/api/public/\w+\?site=([\w.-]+)&amp;days=7", html).group(1)
    for name in PUBLIC:
        assert f"/api/public/{name}?site={site}&amp;days=7" in html
    assert "/api/private/events" not in html, "private names only for those who may run them"
    full = client.get("/api", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    for name in PRIVATE:
        assert f"/api/private/{name}?site={site}&amp;days=7" in full
    for word in ("site", "days", "from", "to", "format", "Authorization: Bearer", "openapi.json"):
        assert word in html
    assert "<script" not in html and "<style" not in html and "style=" not in html


def test_openapi_describes_every_query(client, token):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    for name in PUBLIC:
        operation = doc["paths"][f"/api/public/{name}"]["get"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert set(parameters) == {
            "site",
            "range",
            "format",
            "compare",
            *FILTER_NAMES,
            # the time series' own, optional buckets
            *(["interval"] if name == "visits" else []),
            # browsers and OSes split by version on demand
            *(["versions"] if name in ("browsers", "operating_systems") else []),
        }
        # the range is one exploded object (?from=...&to=...): OpenAPI can say how its
        # parts depend on each other only that way
        range_ = parameters["range"]
        assert (range_["in"], range_["style"], range_["explode"]) == ("query", "form", True)
        assert set(range_["schema"]["properties"]) == {"days", "from", "to", "t0", "t1"}
    interval = next(
        p
        for p in doc["paths"]["/api/public/visits"]["get"]["parameters"]
        if p["name"] == "interval"
    )
    assert interval["required"] is False
    assert interval["schema"]["enum"] == ["hour", "day", "week", "month"]
    assert "/api/private" in doc["paths"] and "/api/private/events" not in doc["paths"]
    full = client.get("/api/openapi.json", headers={"Authorization": f"Bearer {token}"}).get_json()
    for name in PRIVATE:
        assert full["paths"][f"/api/private/{name}"]["get"]["security"]


def test_logging_in_through_the_form_opens_the_private_api(app, client, seeded):
    from tests.auth.conftest import csrf_token

    with app.app_context():
        accounts.add_user("dora", "a long password")
    assert client.get("/api/private/events", query_string=RANGE).status_code == 401
    form = client.get("/login")
    client.post(
        "/login",
        data={
            "username": "dora",
            "password": "a long password",
            "csrf_token": csrf_token(form.text),
        },
    )
    answer = client.get("/api/private/events", query_string=RANGE)
    assert answer.status_code == 200
    assert "signup" in {row[0] for row in answer.get_json()["data"]}
    client.post("/logout")
    assert client.get("/api/private/events", query_string=RANGE).status_code == 401


# ---- sites (contract sections 6 and 8) ------------------------------------------------------


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _add_site(app, host: str, zone: str = "UTC", public: bool = True):
    with app.app_context(), db.engine.begin() as connection:
        return add_site(connection, host, zone, public)


def _every_report(token: str | None = None):
    """(path, headers) of every built-in report: public ones, then private ones with the token."""
    reports = [(f"/api/public/{name}", {}) for name in PUBLIC]
    if token is not None:
        # the funnel report also needs funnel=NAME: tests/test_goal_reports.py
        reports += [(f"/api/private/{n}", _bearer(token)) for n in PRIVATE if n != "funnel"]
    return reports


def test_without_any_site_reports_are_404_json(app, client, token):
    clock.pin(app, NOW)
    for path, headers in _every_report(token):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 404, path
        assert answer.is_json and "addsite" in answer.get_json()["error"]


def test_with_one_site_the_site_parameter_may_be_left_out(client, seeded):
    bare = client.get("/api/public/visits", query_string=RANGE)
    assert sum(row[2] for row in bare.get_json()["data"]) == len(rd.in_range(seeded.visits))
    for name in ("shop.example", "WWW.Shop.Example"):  # www. and capitals name the same site
        named = client.get("/api/public/visits", query_string={**RANGE, "site": name})
        assert named.status_code == 200
        assert named.get_json()["data"] == bare.get_json()["data"]
    for answer in (bare, named):
        body = answer.get_json()
        assert (body["site"], body["timezone"]) == (rd.HOST, "UTC")


def test_with_several_sites_leaving_site_out_is_400_naming_it(app, client, token, seeded):
    _add_site(app, "other.example", "Asia/Kolkata")
    for path, headers in _every_report(token):
        for extra in ({}, {"format": "csv"}):
            answer = client.get(path, query_string={**RANGE, **extra}, headers=headers)
            assert answer.status_code == 400, path
            assert answer.is_json and re.search(r"\bsite\b", answer.get_json()["error"]), path
        named = client.get(path, query_string={**RANGE, "site": "other.example"}, headers=headers)
        assert named.status_code == 200, path
        body = named.get_json()
        assert (body["site"], body["timezone"]) == ("other.example", "Asia/Kolkata")
    # the other site has no rows: its answers hold none of the seeded site's
    visits = client.get("/api/public/visits", query_string={**RANGE, "site": "other.example"})
    assert all(row[1:] == [0, 0] for row in visits.get_json()["data"])
    mine = client.get("/api/public/visits", query_string={**RANGE, "site": rd.HOST})
    assert sum(row[2] for row in mine.get_json()["data"]) == len(rd.in_range(seeded.visits))


@pytest.mark.parametrize(
    "host",
    ["nope.example", "", "shop.example:8080", "https://shop.example/", "x" * 300, "' OR 1=1 --"],
)
def test_an_unknown_site_is_404_json(client, token, seeded, host):
    for path, headers in _every_report(token):
        answer = client.get(path, query_string={**RANGE, "site": host}, headers=headers)
        assert answer.status_code == 404, (path, host)
        assert answer.is_json and answer.get_json()["error"]


def test_a_private_site_needs_a_login_or_token_until_it_is_made_public(app, client, runner, token):
    from crumby.cli import cli

    clock.pin(app, NOW)
    with app.app_context():
        rd.insert(rd.build_seed(NOW), public=False)  # the default for a new site
    for path, _headers in _every_report(token):
        for extra in ({}, {"format": "csv"}):
            refused = client.get(path, query_string={**RANGE, **extra})
            assert refused.status_code == 401, path
            assert refused.is_json and set(refused.get_json()) == {"error"}, path
            assert "Location" not in refused.headers
        wrong = client.get(path, query_string=RANGE, headers=_bearer("not-a-token"))
        assert wrong.status_code == 401, path
    with_token = {}
    for path, _headers in _every_report(token):
        answer = client.get(path, query_string=RANGE, headers=_bearer(token))
        assert answer.status_code == 200, path
        assert answer.get_json()["site"] == rd.HOST
        # a private site's answer is nobody else's: no shared cache may keep it
        assert answer.headers["Cache-Control"] == "private, no-store", path
        with_token[path] = answer.get_json()["data"]
    assert any(with_token.values())

    made_public = runner.invoke(cli, ["site", rd.HOST, "--public"])
    assert made_public.exit_code == 0, made_public.output
    assert made_public.output.strip() == f"{rd.HOST} UTC public"
    for path, headers in _every_report(token):
        if headers:  # private reports stay private
            assert client.get(path, query_string=RANGE).status_code == 401, path
            continue
        answer = client.get(path, query_string=RANGE)
        assert answer.status_code == 200, path
        assert answer.get_json()["data"] == with_token[path], path
        assert answer.headers["Cache-Control"].startswith("public, max-age="), path

    # and private again: the answers cached while it was public are not handed out
    assert runner.invoke(cli, ["site", rd.HOST, "--private"]).exit_code == 0
    for path, _headers in _every_report(token):
        assert client.get(path, query_string=RANGE).status_code == 401, path


# ---- cache and sites --------------------------------------------------------------------------


def _visit_rows(site, *hours: dt.datetime) -> list[dict]:
    return [
        {
            "cid": f"c{n}",
            "datetime": when,
            "site_id": site.id,
            "doc_uri": f"https://{site.host}/p?n={n}",
            "is_bot": False,
        }
        for n, when in enumerate(hours)
    ]


def test_the_cache_never_answers_for_another_site(database_url, tmp_path, app, runner):
    from crumby.cli import cli

    one = _add_site(app, "one.example")
    two = _add_site(app, "two.example")
    evening = dt.datetime(2024, 3, 1, 20)  # 01:30 the next day in Kolkata
    ingest.store(app, _visit_rows(one, evening) + _visit_rows(two, *[evening] * 3))
    later = dt.datetime(2024, 6, 1, 12)  # the range is long past: answers are kept 60 s
    client = make_app(database_url, tmp_path, now=later, REPORT_CACHE_SECONDS=60).test_client()
    span = {"from": "2024-03-01", "to": "2024-03-02"}

    def get(report: str, host: str):
        answer = client.get(f"/api/public/{report}", query_string={**span, "site": host})
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "public, max-age=60"
        assert answer.get_json()["site"] == host
        return answer.get_json()["data"]

    for _ in range(2):  # the second round is answered from the cache
        assert get("visits", "one.example") == [["2024-03-01", 1, 1], ["2024-03-02", 0, 0]]
        assert get("visits", "two.example") == [["2024-03-01", 3, 3], ["2024-03-02", 0, 0]]
        assert get("summary", "one.example")[0][:3] == [1, 1, 1]
        assert get("summary", "two.example")[0][:3] == [3, 3, 3]
        assert get("documents", "one.example") == [["/p", None, 1, 1]]
        assert get("documents", "two.example") == [["/p", None, 3, 3]]
    # a site's new zone moves its days at once, cache or not
    moved = runner.invoke(cli, ["site", "one.example", "--timezone", "Asia/Kolkata"])
    assert moved.exit_code == 0, moved.output
    assert get("visits", "one.example") == [["2024-03-01", 0, 0], ["2024-03-02", 1, 1]]
    assert get("visits", "two.example") == [["2024-03-01", 3, 3], ["2024-03-02", 0, 0]]


@pytest.fixture
def cache_clock(monkeypatch):
    """The report cache's clock (cachelib reads time.time()), moved by hand instead of sleeping."""
    import cachelib.simple

    ticks = [1_000_000.0]
    monkeypatch.setattr(cachelib.simple, "time", lambda: ticks[0])
    return ticks


def test_a_hit_shows_in_cached_answers_for_today_within_5_seconds(
    database_url, tmp_path, app, site, cache_clock
):
    client = make_app(database_url, tmp_path, REPORT_CACHE_SECONDS=60).test_client()
    today = {"days": "1"}  # NOW's day
    old = {"from": "2024-02-20", "to": "2024-02-20"}
    before = {
        name: client.get(f"/api/public/{name}", query_string=today)
        for name in ("visits", "summary", "documents", "realtime")
    }
    for name, answer in before.items():
        assert answer.headers["Cache-Control"] == "public, max-age=5", name
    assert before["visits"].get_json()["data"] == [[NOW.date().isoformat(), 0, 0]]
    assert before["documents"].get_json()["data"] == []
    first_old = client.get("/api/public/visits", query_string=old)
    assert first_old.headers["Cache-Control"] == "public, max-age=60"

    hit = client.post("/visit", json={"dl": f"https://{rd.HOST}/new?utm_source=x", "cid": "n1"})
    assert hit.status_code == 204
    # a row for the old day stored now (as a log import would): the old answer may keep 60 s
    ingest.store(app, _visit_rows(site, dt.datetime(2024, 2, 20, 10)))

    cache_clock[0] += 5
    after = {name: client.get(f"/api/public/{name}", query_string=today) for name in before}
    assert after["visits"].get_json()["data"] == [[NOW.date().isoformat(), 1, 1]]
    assert after["summary"].get_json()["data"][0][:3] == [1, 1, 1]
    assert after["documents"].get_json()["data"] == [["/new", None, 1, 1]]
    assert after["realtime"].get_json()["data"] == [[1, 1]]
    # the cache was on all along, and its clock is the one moved: the old range is still cached
    assert client.get("/api/public/visits", query_string=old).get_json()["data"] == [
        ["2024-02-20", 0, 0]
    ]
    cache_clock[0] += 60
    assert client.get("/api/public/visits", query_string=old).get_json()["data"] == [
        ["2024-02-20", 1, 1]
    ]


def test_today_is_the_sites_local_today(database_url, tmp_path, app):
    """At 20:00 UTC it is already tomorrow in Kolkata: the default range ends there."""
    evening = dt.datetime(2024, 3, 1, 20)
    site = _add_site(app, "kolkata.example", "Asia/Kolkata")
    client = make_app(database_url, tmp_path, now=evening, REPORT_CACHE_SECONDS=60).test_client()
    ingest.store(app, _visit_rows(site, evening - dt.timedelta(minutes=1)))
    body = client.get("/api/public/visits").get_json()
    assert (body["t0"], body["t1"]) == ("2024-02-02", "2024-03-02")
    assert body["data"][-2:] == [["2024-03-01", 0, 0], ["2024-03-02", 1, 1]]
    answer = client.get("/api/public/visits", query_string={"days": "1"})
    assert answer.get_json()["data"] == [["2024-03-02", 1, 1]]
    assert answer.headers["Cache-Control"] == "public, max-age=5"
