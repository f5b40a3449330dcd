"""SIGTERM to gunicorn's master under load: in-flight and queued hits finish and are answered.

gunicorn runs as deployment/systemd/crumby.service starts it (its workers,
threads and graceful timeout); clients keep sending hits over kept-alive
connections while the master gets SIGTERM, as ``systemctl stop`` sends it.
Every hit answered 2xx must be a stored row, no hit may get a 5xx, and no
request a server had begun to read may be cut off: once the server stops
listening, the only failure a client may see is a refused new connection
(or a kept-alive connection closed before it sent anything: the keep-alive
race every HTTP client retries). A connection opened after the signal is
served or refused: gunicorn alone would leave it queued in a listening socket
no worker reads any more, to be reset at the exit
(``crumby.operations.gunicorn_conf`` drains and closes it); only one made in
the instant before the last close can still be reset, for a few clients at most.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import BACKENDS, _server_database
from tests.test_deployment import free_port, unit_command, wait_until_serving

CLIENTS = 12
ANSWERS_BEFORE_STOP = 100


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crumby.db'}"
    else:
        yield from _server_database(request.param)


def answered(outcomes: Counter) -> int:
    return sum(n for key, n in list(outcomes.items()) if key.isdigit())


def client_loop(
    port: int, number: int, outcomes: Counter, stop: threading.Event, signalled: threading.Event
) -> None:
    """Send hits over one kept-alive connection (a new one when the server closes it)."""
    connection: http.client.HTTPConnection | None = None
    sent = 0
    while not stop.is_set() or connection is not None:
        fresh = connection is None
        if fresh:
            if stop.is_set():
                return
            opened_after_signal = signalled.is_set()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                connection.connect()
            except ConnectionRefusedError:
                outcomes["refused"] += 1
                return
        sent += 1
        body = f"dl=https%3A%2F%2Fstop.example%2Fc{number}-{sent}"
        try:
            connection.request(
                "POST",
                "/visit",
                body=body,
                headers={
                    "Content-Type": "text/plain",
                    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
                    "X-Forwarded-For": f"10.{number}.{sent // 250 % 250}.{sent % 250}",
                },
            )
            response = connection.getresponse()
            response.read()
            outcomes[str(response.status)] += 1
            if response.will_close:
                connection.close()
                connection = None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            # a kept-alive connection the server closed just as this request went out; or a
            # connection made after the signal, left in the listen queue no worker takes
            if not fresh:
                outcomes["keepalive_race"] += 1
            elif opened_after_signal:
                outcomes["queued_after_signal"] += 1
            else:
                outcomes[f"cut:{type(exc).__name__}"] += 1
            connection.close()
            connection = None
        if stop.is_set() and connection is not None:
            connection.close()
            connection = None


def stored_hits(database: str, host: str) -> int:
    """The views of ``host`` in ``database``, read on a connection of the test's own."""
    engine = sa.create_engine(database)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT COUNT(*) FROM visits WHERE doc_host = :host"), {"host": host}
            ).scalar()
    finally:
        engine.dispose()


def start_gunicorn(database: str, tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    """gunicorn as the systemd unit starts it, on ``database`` with the site stop.example:
    its master, port and log file."""
    settings = tmp_path / "crumby.cfg"
    settings.write_text(
        f"SQLALCHEMY_DATABASE_URI = {database!r}\n"
        "SECRET_KEY = 'under-load'\n"
        "HIT_RATE_LIMIT = None\n"
        "PROXY_COUNT = 1\n"
        f"GEOIP2_DATABASE_NAME = {str(tmp_path / 'none.mmdb')!r}\n"
    )
    crumby = Path(sys.executable).with_name("crumby")
    env = {"PATH": os.environ["PATH"], "CRUMBY_SETTINGS": str(settings)}
    subprocess.run([crumby, "addsite", "stop.example"], env=env, check=True, capture_output=True)
    port = free_port()
    argv, _ = unit_command(port)
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        master = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=out)
    return master, port, log


def test_sigterm_under_load_answers_every_accepted_hit(database, tmp_path):
    master, port, log = start_gunicorn(database, tmp_path)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", master, [log])
        outcomes: Counter = Counter()
        stop, signalled = threading.Event(), threading.Event()
        threads = [
            threading.Thread(target=client_loop, args=(port, n, outcomes, stop, signalled))
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        # the signal comes under load: once the workers have booted and answered plenty
        deadline = time.monotonic() + 90
        while answered(outcomes) < ANSWERS_BEFORE_STOP and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        answered_before = answered(outcomes)
        signalled.set()
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=60)
        stop.set()
        for thread in threads:
            thread.join(60)
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()
    shown = log.read_text()
    assert master.returncode == 0, shown[-3000:]
    assert answered_before >= ANSWERS_BEFORE_STOP, (
        outcomes,
        shown[-3000:],
    )  # the load ran at the signal
    allowed = {"204", "refused", "keepalive_race", "queued_after_signal"}
    assert set(outcomes) <= allowed, (outcomes, shown[-3000:])
    # A connection queued in the microseconds between a stopping worker's last look at the
    # socket and its closing of it is still reset (seen: 3 of 12 clients once, in a loaded
    # CI run; usually none). Without the hook every client's first connection after the
    # signal was reset, 12 of 12.
    assert outcomes["queued_after_signal"] < CLIENTS // 2, (outcomes, shown[-3000:])
    stored = stored_hits(database, "stop.example")
    assert stored == outcomes["204"], outcomes
    assert "Traceback" not in shown
