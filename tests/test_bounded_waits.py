"""Every wait has a bound: reports and /readyz against a frozen database (``kill -STOP``).

Each test starts a MariaDB or PostgreSQL server of its own (tests/private_servers.py),
never the shared ones, and freezes all of its processes: connections stay open
(the kernel still acknowledges TCP) but nothing ever answers, the case where a
server-side statement limit does not help. A report must then answer 503 JSON
within REPORT_TIMEOUT_SECONDS plus a second, /readyz within its own short limit,
and both must recover by themselves once the server runs again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from crumby.clock import pin
from crumby.extensions import db
from crumby.operations.wsgi import READY_TIMEOUT_SECONDS
from crumby.store import bounded, deadlines
from tests.conftest import BACKENDS
from tests.private_servers import SERVERS, app_on_private_server

NOW = dt.datetime(2026, 11, 23, 12, 0, 0)
REPORT_LIMIT = 3


@pytest.fixture(params=[name for name in BACKENDS if name in SERVERS])
def frozen_setup(request: pytest.FixtureRequest) -> Iterator[tuple]:
    """An app on a private server with one public site; the server itself, to freeze."""
    with app_on_private_server(
        request.param,
        "crumby_frozen",
        "frozen.example",
        public=True,
        SECRET_KEY="bounded-waits",
        REPORT_TIMEOUT_SECONDS=REPORT_LIMIT,
        REPORT_CACHE_SECONDS=0,
    ) as (app, server):
        pin(app, NOW)
        yield app, server


def timed(client, path: str) -> tuple[float, object]:
    started = time.monotonic()
    response = client.get(path)
    return time.monotonic() - started, response


def test_a_report_against_a_frozen_database_answers_503_json_in_time(frozen_setup):
    app, server = frozen_setup
    client = app.test_client()
    report = "/api/public/summary?site=frozen.example&days=7"
    # a pooled connection exists and works
    assert client.get(report).status_code == 200
    server.freeze()
    try:
        # through the pooled connection (its ping), then through a new connection
        for _ in range(2):
            elapsed, response = timed(client, report)
            assert response.status_code == 503, response.get_data(as_text=True)
            assert response.is_json and "error" in response.get_json()
            assert elapsed < REPORT_LIMIT + 1, elapsed
        # a query that starts on a live connection and then hangs: the connection is bound
        with app.app_context():
            db.engine.dispose()
    finally:
        server.thaw()
    # recovered by itself: no restart, no stale connection left in the pool
    response = client.get(report)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_dashboard_page_against_a_frozen_database_answers_503_in_time(frozen_setup):
    app, server = frozen_setup
    client = app.test_client()
    page = "/?site=frozen.example"
    assert client.get(page).status_code == 200
    server.freeze()
    try:
        for _ in range(2):
            elapsed, response = timed(client, page)
            assert response.status_code == 503, response.get_data(as_text=True)[:500]
            assert response.mimetype == "text/html"
            assert elapsed < REPORT_LIMIT + 1, elapsed
    finally:
        server.thaw()
    assert client.get(page).status_code == 200


def test_a_query_that_hangs_midway_is_cut_at_the_deadline(frozen_setup):
    """The connection was checked out and pinged fine; the server freezes during the query."""
    app, server = frozen_setup
    with app.app_context():
        engine = db.engine
        with deadlines.deadline(2.0), engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            server.freeze()
            started = time.monotonic()
            with pytest.raises(sa.exc.DBAPIError) as caught:
                connection.exec_driver_sql("SELECT 2").all()
            elapsed = time.monotonic() - started
        server.thaw()
    assert elapsed < 2.5, elapsed
    assert caught.value.connection_invalidated  # never handed out again
    with app.app_context(), db.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 3").scalar() == 3


def test_readyz_has_its_own_short_limit_and_recovers(frozen_setup):
    app, server = frozen_setup
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    server.freeze()
    try:
        for _ in range(2):
            elapsed, response = timed(client, "/readyz")
            assert response.status_code == 503 and response.is_json
            assert elapsed < READY_TIMEOUT_SECONDS + 1, elapsed
        # /healthz never touches the database
        elapsed, response = timed(client, "/healthz")
        assert response.status_code == 200 and elapsed < 0.5
    finally:
        server.thaw()
    assert client.get("/readyz").status_code == 200


def test_outside_a_deadline_pings_and_new_connections_are_still_bounded(frozen_setup):
    """A checkout never hangs: the pool's ping and a new connection have short limits."""
    app, server = frozen_setup
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        server.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(Exception):  # noqa: B017 - whichever driver error says so
                with engine.connect() as connection:
                    connection.exec_driver_sql("SELECT 1")
            elapsed = time.monotonic() - started
        finally:
            server.thaw()
    assert elapsed < deadlines.PING_SECONDS + deadlines.CONNECT_SECONDS + 1, elapsed


def test_a_held_connection_is_bounded_by_bounded(frozen_setup):
    """``store.bounded``: for a connection kept across work (the hit writer's), per unit."""
    app, server = frozen_setup
    with app.app_context():
        with db.engine.connect() as connection:
            with bounded(connection, 5.0):
                assert connection.exec_driver_sql("SELECT 1").scalar() == 1
            server.freeze()
            try:
                started = time.monotonic()
                with pytest.raises(sa.exc.DBAPIError), bounded(connection, 1.5):
                    connection.exec_driver_sql("SELECT 2").all()
                elapsed = time.monotonic() - started
            finally:
                server.thaw()
    assert elapsed < 2.5, elapsed


def test_a_hit_against_a_frozen_database_answers_503_in_time_and_is_never_stored(frozen_setup):
    """Contract section 10: 503 with Retry-After within 5 s; a 503 hit never lands later."""
    app, server = frozen_setup
    app.config["HIT_RATE_LIMIT"] = None
    client = app.test_client()
    page = "https://frozen.example/"
    assert client.post("/visit", json={"dl": page + "before", "cid": "v1"}).status_code == 204
    server.freeze()
    try:
        started = time.monotonic()
        response = client.post("/visit", json={"dl": page + "frozen", "cid": "v1"})
        took = time.monotonic() - started
    finally:
        server.thaw()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "error" in response.get_json()
    assert took < 5
    # the database is back: Crumby recovers by itself, and the 503 hit stays unstored
    assert client.post("/visit", json={"dl": page + "after", "cid": "v1"}).status_code == 204
    with app.app_context():
        pages = db.session.scalars(
            sa.select(sa.text("doc_uri")).select_from(sa.text("visits")).order_by(sa.text("id"))
        ).all()
    assert pages == [page + "before", page + "after"]


def test_the_first_hit_of_a_new_process_against_a_frozen_database_answers_503_in_time(
    frozen_setup,
):
    """A new worker checks the tables once; against a frozen server that check must not
    hold the hit past HIT_WAIT_SECONDS either, and it finishes by itself once thawed."""
    from crumby import create_app

    app, server = frozen_setup
    fresh = create_app({**app.config, "HIT_RATE_LIMIT": None, "HIT_WAIT_SECONDS": 2})
    pin(fresh, NOW)
    client = fresh.test_client()
    page = "https://frozen.example/"
    server.freeze()
    try:
        started = time.monotonic()
        response = client.post("/visit", json={"dl": page + "frozen", "cid": "v2"})
        took = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "error" in response.get_json()
        assert took < 3.5, took
        # a dashboard page of the same new process is bounded by its own deadline
        started = time.monotonic()
        assert client.get("/?site=frozen.example").status_code == 503
        assert time.monotonic() - started < REPORT_LIMIT + 2.5
    finally:
        server.thaw()
    deadline = time.monotonic() + 30
    while (
        status := client.post("/visit", json={"dl": page + "after", "cid": "v2"}).status_code
    ) != 204:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    with fresh.app_context():
        pages = db.session.scalars(
            sa.select(sa.text("doc_uri")).select_from(sa.text("visits")).order_by(sa.text("id"))
        ).all()
        db.engine.dispose()
    assert pages == [page + "after"]
