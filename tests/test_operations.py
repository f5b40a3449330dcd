"""Operations (contract section 10): /healthz, /readyz, /metrics, and Vary: Origin.

The metrics are per process (prometheus_client's registry), shared by every
app a test makes, so tests compare a scrape before and after what they do.
The multi-process test starts a real gunicorn with two workers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from crumby import accounts, create_app
from crumby.database import ensure_schema
from crumby.extensions import db
from crumby.ingest import counters_for
from crumby.models import Event, Visit
from crumby.sites import add_site
from tests.conftest import BACKENDS, SERVER_URLS

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
REASONS = ("unknown_site", "bot", "rate_limited", "invalid", "too_large", "dnt")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_url(backend: str, tmp_path: Path) -> str:
    """A database URL of ``backend`` that cannot be reached."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'crumby.db'}"
    url = sa.engine.make_url(SERVER_URLS[backend])
    return url.set(port=closed_port()).render_as_string(hide_password=False)


def make_app(url: str, tmp_path: Path, **config: object) -> Flask:
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "ops-secret",
            "GEOIP2_DATABASE_NAME": str(tmp_path / "no-geoip.mmdb"),
            "HIT_RATE_LIMIT": None,
            **config,
        }
    )


def bearer(app: Flask, name: str = "ops") -> dict[str, str]:
    """A user and their API token, as the Authorization header."""
    with app.app_context():
        accounts.add_user(name, "pw")
        token = accounts.create_token(name)
    return {"Authorization": f"Bearer {token}"}


def register(app: Flask, host: str, public: bool = True) -> None:
    ensure_schema(app)
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, host, public=public)


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text page: (name, labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def scrape(client: FlaskClient, headers: dict[str, str]) -> dict:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    return samples(response.get_data(as_text=True))


# --- /healthz and /readyz ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_healthz_answers_without_the_database_and_readyz_says_it_is_unreachable(backend, tmp_path):
    app = make_app(unreachable_url(backend, tmp_path), tmp_path)
    client = app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == {
        "status": "unavailable",
        "error": "the database cannot be reached",
    }
    # the process still serves, and says so
    assert client.get("/healthz").status_code == 200
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_readyz_makes_a_real_round_trip(app: Flask):
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        response = app.test_client().get("/readyz")
        health = app.test_client().get("/healthz")
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert statements == ["SELECT 1"]  # from /readyz; /healthz sent nothing
    assert health.status_code == 200


# --- /metrics ---------------------------------------------------------------------------


def test_metrics_needs_a_login_or_a_token(app: Flask):
    client = app.test_client()
    response = client.get("/metrics")
    assert response.status_code == 401
    assert "error" in response.get_json()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    response = client.get("/metrics", headers=bearer(app))
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    with app.app_context():
        user = accounts.find_user("ops")
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    response = client.get("/metrics")
    assert response.status_code == 200
    families = {f.name for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {
        "crumby_hits",
        "crumby_hits_dropped",
        "crumby_request_duration_seconds",
        "crumby_report_duration_seconds",
        "crumby_writer_queue_depth",
        "crumby_writer_batch_size",
    } <= families
    scraped = samples(response.get_data(as_text=True))
    for reason in (*REASONS, "database_unavailable"):
        assert ("crumby_hits_dropped_total", frozenset({("reason", reason)})) in scraped
    for kind in ("visit", "event"):
        assert ("crumby_hits_total", frozenset({("kind", kind)})) in scraped


def test_metric_counters_move_by_exactly_the_hits_stored_and_dropped(app: Flask):
    register(app, "shop.example")
    client = app.test_client()
    auth = bearer(app)
    before = scrape(client, auth)
    answers = [
        client.post(
            "/visit", data={"dl": "https://shop.example/a"}, headers={"User-Agent": CHROME}
        ),
        client.get("/visit?dl=https%3A%2F%2Fwww.shop.example%2Fb", headers={"User-Agent": CHROME}),
        client.post(
            "/visit", json={"dl": "https://shop.example/c"}, headers={"User-Agent": CHROME}
        ),
        client.post("/event", data={"en": "buy", "dl": "https://shop.example/c"}),
        client.post("/event", data={"en": "buy", "site": "shop.example"}),
        # no registered site: answered as stored, counted as unknown_site
        client.post("/visit", data={"dl": "https://elsewhere.example/"}),
        client.post("/event", data={"en": "x", "dl": "https://elsewhere.example/"}),
        # a bot: stored flagged, counted under bot (and among the stored visits)
        client.post(
            "/visit", data={"dl": "https://shop.example/"}, headers={"User-Agent": GOOGLEBOT}
        ),
    ]
    assert [r.status_code for r in answers] == [204, 200, 204, 204, 204, 204, 204, 204]
    refused = [
        client.post("/visit", data={"dt": "no page"}),
        client.post("/visit", data={"dl": "https://shop.example/" + "x" * 9000}),
        client.put("/visit"),
    ]
    assert [r.status_code for r in refused] == [400, 413, 405]
    # a report (a database run) and a page
    assert client.get("/api/public/visits?site=shop.example&days=3").status_code == 200
    assert client.get("/login").status_code == 200
    after = scrape(client, auth)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("crumby_hits_total", kind="visit") == 4
    assert moved("crumby_hits_total", kind="event") == 2
    assert moved("crumby_hits_dropped_total", reason="unknown_site") == 2
    assert moved("crumby_hits_dropped_total", reason="bot") == 1
    assert moved("crumby_hits_dropped_total", reason="invalid") == 2
    assert moved("crumby_hits_dropped_total", reason="too_large") == 1
    for reason in ("rate_limited", "dnt", "database_unavailable"):
        assert moved("crumby_hits_dropped_total", reason=reason) == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Visit)) == 4
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 2
    # every hit was timed as a hit; the report and the page in their own classes
    assert moved("crumby_request_duration_seconds_count", endpoint="hit") == 11
    assert moved("crumby_request_duration_seconds_count", endpoint="report") == 1
    assert moved("crumby_request_duration_seconds_count", endpoint="page") == 1
    assert moved("crumby_report_duration_seconds_count", query="public/visits") == 1
    # the 8 hits that reached the writer went through it in batches
    assert moved("crumby_writer_batch_size_sum") == 8
    assert 1 <= moved("crumby_writer_batch_size_count") <= 8
    assert value(after, "crumby_writer_queue_depth") == 0
    # the app's own counters, which feed these, hold the same outcome
    assert counters_for(app).snapshot() == (
        {"visits": 4, "events": 2},
        {"unknown_site": 2, "bot": 1, "invalid": 2, "too_large": 1},
    )


def test_dnt_and_an_unreachable_database_are_counted(app: Flask, tmp_path):
    dnt_app = make_app(str(app.config["SQLALCHEMY_DATABASE_URI"]), tmp_path, RESPECT_DNT=True)
    register(dnt_app, "shop.example")
    client = dnt_app.test_client()
    auth = bearer(dnt_app)
    before = scrape(client, auth)
    answer = client.post("/visit", data={"dl": "https://shop.example/"}, headers={"DNT": "1"})
    assert answer.status_code == 204
    down = make_app(unreachable_url(_backend(app), tmp_path), tmp_path)
    answer = down.test_client().post("/visit", data={"dl": "https://shop.example/"})
    assert answer.status_code == 503
    after = scrape(client, auth)
    assert (
        value(after, "crumby_hits_dropped_total", reason="dnt")
        - value(before, "crumby_hits_dropped_total", reason="dnt")
        == 1
    )
    assert (
        value(after, "crumby_hits_dropped_total", reason="database_unavailable")
        - value(before, "crumby_hits_dropped_total", reason="database_unavailable")
        == 1
    )
    assert value(after, "crumby_hits_total", kind="visit") == value(
        before, "crumby_hits_total", kind="visit"
    )
    with dnt_app.app_context():
        db.engine.dispose()


def _backend(app: Flask) -> str:
    name = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name()
    return {"mysql": "mysql", "postgresql": "postgresql"}.get(name, "sqlite")


# --- gunicorn: every worker's counts add up ---------------------------------------------


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "text/plain", "User-Agent": CHROME}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def _per_process_hits(folder: Path) -> dict[int, float]:
    """crumby_hits_total{kind=visit} as each worker's own file holds it."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if sample.name == "crumby_hits_total" and sample.labels == {"kind": "visit"}:
                    counts[pid] = sample.value
    return counts


@pytest.fixture
def gunicorn_app(database_url: str, tmp_path: Path, app: Flask) -> Iterator[dict]:
    """gunicorn with 2 workers in multi-process mode, as the systemd unit runs it."""
    register(app, "shop.example")
    auth = bearer(app)
    settings = tmp_path / "crumby.cfg"
    settings.write_text(
        f"SQLALCHEMY_DATABASE_URI = {database_url!r}\n"
        "SECRET_KEY = 'gunicorn-test'\n"
        f"GEOIP2_DATABASE_NAME = {str(tmp_path / 'no-geoip.mmdb')!r}\n"
        "HIT_RATE_LIMIT = None\n"
    )
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left over from a previous run")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CRUMBY_SETTINGS": str(settings),
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [
        gunicorn,
        "--config",
        "python:crumby.operations.gunicorn_conf",
        "--workers",
        "2",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        "crumby:create_app()",
    ]
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                    assert json.loads(response.read()) == {"status": "ok"}
                    break
            except (OSError, urllib.error.URLError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.1)
        yield {"base": base, "auth": auth, "folder": folder, "proc": proc, "log": log}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _scrape_url(base: str, auth: dict[str, str]) -> dict:
    request = urllib.request.Request(base + "/metrics", headers=auth)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        return samples(response.read().decode())


def test_two_gunicorn_workers_counts_add_up(gunicorn_app, app: Flask):
    base, folder = gunicorn_app["base"], gunicorn_app["folder"]
    # on_starting emptied the folder of the previous run's files
    assert not (folder / "counter_1.db").exists()
    body = b"dl=https%3A%2F%2Fshop.example%2Fgunicorn"
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        for _round in range(20):  # until both workers have stored hits (almost always round 1)
            statuses = list(pool.map(lambda _: _post(base + "/visit", body), range(40)))
            assert statuses == [204] * 40
            sent += 40
            if len([n for n in _per_process_hits(folder).values() if n > 0]) >= 2:
                break
    per_process = _per_process_hits(folder)
    busy = {pid: n for pid, n in per_process.items() if n > 0}
    assert len(busy) == 2, per_process
    assert sum(busy.values()) == sent
    scraped = _scrape_url(base, gunicorn_app["auth"])
    assert value(scraped, "crumby_hits_total", kind="visit") == sent
    assert value(scraped, "crumby_request_duration_seconds_count", endpoint="hit") == sent
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Visit)) == sent

    # a worker killed outright: its counts stay in the sum, its live gauge goes
    victim = max(busy, key=busy.get)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (folder / f"gauge_livesum_{victim}.db").exists():
        assert time.monotonic() < deadline, gunicorn_app["log"].read_text()
        time.sleep(0.1)
    statuses = [_post(base + "/visit", body) for _ in range(10)]
    assert statuses == [204] * 10
    scraped = _scrape_url(base, gunicorn_app["auth"])
    assert value(scraped, "crumby_hits_total", kind="visit") == sent + 10


# --- Vary: Origin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "origins", ["https://a.example", ["https://a.example", "https://b.example"]]
)
def test_answers_that_depend_on_the_origin_say_vary_origin(tmp_path, origins):
    app = make_app(f"sqlite:///{tmp_path / 'cors.db'}", tmp_path, CROSSDOMAIN_ORIGIN=origins)
    register(app, "shop.example")
    client = app.test_client()
    report = "/api/public/visits?site=shop.example&days=2"
    seen = {}
    for origin in (None, "https://a.example", "https://evil.example"):
        headers = {"Origin": origin} if origin else {}
        for path in (report, "/api/public", "/api/public/nope", "/api/private"):
            response = client.get(path, headers=headers)
            assert "Origin" in response.vary, (path, origin, response.headers)
            seen[(path, origin)] = response.headers.get("Access-Control-Allow-Origin")
    # it does depend on it: the allowed origin is echoed, another gets no CORS header
    assert seen[(report, "https://a.example")] == "https://a.example"
    assert seen[(report, "https://evil.example")] is None
    preflight = client.options(
        report,
        headers={"Origin": "https://a.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Origin" in preflight.vary
    assert client.get(report).headers["Cache-Control"].startswith("public")


def test_answers_the_same_for_every_origin_do_not_vary_on_it(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'cors.db'}", tmp_path, CROSSDOMAIN_ORIGIN="*")
    register(app, "shop.example")
    client = app.test_client()
    for origin in ("https://a.example", "https://evil.example"):
        response = client.get("/api/public/visits?site=shop.example", headers={"Origin": origin})
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Origin" not in response.vary
        # the hit endpoints accept every origin alike
        hit = client.post(
            "/visit", data={"dl": "https://shop.example/"}, headers={"Origin": origin}
        )
        assert hit.status_code == 204
        assert hit.headers["Access-Control-Allow-Origin"] == "*"
        assert "Vary" not in hit.headers
