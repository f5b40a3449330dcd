"""``crumby syslog``: nginx's JSON access log over syslog UDP becomes visits, in batches.

The end-to-end tests start Debian's nginx (as tests/test_deployment.py does:
its own prefix, config, pid file and a free loopback port) with the
``log_format`` and ``access_log`` lines README gives, sending to a
``crumby syslog`` started from the systemd unit's command line.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from crumby.extensions import db
from crumby.imports.importer import LogImporter, StoreFailed
from crumby.imports.syslog import Malformed, SyslogListener, message_of
from crumby.models import ImportKey, Visit
from crumby.sites import add_site
from tests.test_deployment import RUN_GROUP, RUN_USER, free_port, stop, wait_until_serving

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "deployment" / "systemd" / "crumby-syslog.service"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def json_line(path: str, when: dt.datetime, host: str = "example.org", **fields) -> str:
    item = {
        "ip": "203.0.113.9",
        "host": host,
        "path": path,
        "status": "200",
        "referrer": "",
        "user_agent": FIREFOX,
        "method": "GET",
        "date": when.isoformat(),
    }
    item.update(fields)
    return json.dumps(item)


def syslog(message: str, host: str | None = "web1", tag: str = "crumby") -> bytes:
    """A datagram as nginx sends it."""
    hostname = f"{host} " if host else ""
    return f"<190>Oct  1 13:55:36 {hostname}{tag}: {message}".encode()


@pytest.fixture(autouse=True)
def no_import_keys(app: Flask):
    def clear() -> None:
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(sa.delete(ImportKey))

    clear()
    yield
    clear()


@pytest.fixture
def site(app: Flask):
    with app.app_context(), db.engine.begin() as connection:
        return add_site(connection, "example.org")


def stored(app: Flask) -> list[dict]:
    with app.app_context():
        table = Visit.__table__
        rows = db.session.execute(sa.select(table).order_by(table.c.datetime, table.c.id))
        result = [dict(row._mapping) for row in rows]
        db.session.remove()
        return result


def wait_for(condition, seconds: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# ---- the syslog header ----------------------------------------------------------------------


def test_the_message_is_what_follows_nginxs_rfc3164_header():
    line = json_line("/a", dt.datetime(2024, 10, 1, 12))
    assert message_of(syslog(line)) == line.encode()
    assert message_of(syslog(line, host=None)) == line.encode()  # nginx's nohostname
    assert message_of(syslog(line, tag="nginx[42]")) == line.encode()
    assert message_of(f"<13>Oct 10 03:04:05 web1 crumby:{line}\n".encode()) == line.encode()
    assert message_of(line.encode() + b"\n") == line.encode()  # no header: the line itself
    for junk in (b"<190>garbage", b"<190>Oct 10 13:55:36", b"<1x>Oct 10 13:55:36 a b: c"):
        with pytest.raises(Malformed):
            message_of(junk)


# ---- the listener in this process -----------------------------------------------------------


def start(listener: SyslogListener) -> threading.Thread:
    thread = threading.Thread(target=listener.serve)
    thread.start()
    return thread


def send(address: tuple[str, int], datagrams: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, address)


def test_lines_are_stored_in_batches_of_batch_lines_or_batch_seconds(app, site):
    when = dt.datetime(2024, 10, 1, 12, tzinfo=dt.UTC)
    with app.app_context():
        importer = LogImporter(app, db.engine)
        listener = SyslogListener(importer, "127.0.0.1", 0, batch_lines=5, batch_seconds=3600)
    thread = start(listener)
    try:
        lines = [syslog(json_line(f"/b{n}", when + dt.timedelta(seconds=n))) for n in range(5)]
        send(listener.address, lines)
        # five lines make a batch: stored long before its hour is up
        wait_for(lambda: len(stored(app)) == 5, 10, "a full batch")
        send(listener.address, [syslog(json_line("/late", when + dt.timedelta(minutes=1)))])
        time.sleep(0.5)
        assert len(stored(app)) == 5  # one line waits for its batch
    finally:
        listener.stop()
        thread.join(30)
    assert [row["doc_path"] for row in stored(app)][-1] == "/late"  # stored on stop

    with app.app_context():
        importer = LogImporter(app, db.engine)
        listener = SyslogListener(importer, "127.0.0.1", 0, batch_lines=500, batch_seconds=0.3)
    thread = start(listener)
    try:
        send(listener.address, [syslog(json_line("/quick", when + dt.timedelta(hours=1)))])
        wait_for(lambda: len(stored(app)) == 7, 5, "a batch after batch_seconds")
    finally:
        listener.stop()
        thread.join(30)


def test_memory_stays_bounded_while_the_database_is_slow(app, site):
    when = dt.datetime(2024, 10, 1, 12, tzinfo=dt.UTC)
    gate = threading.Event()
    with app.app_context():
        importer = LogImporter(app, db.engine)
        real_store = importer._store

        def slow_store(rows):
            gate.wait(60)  # the database takes its time
            real_store(rows)

        importer._store = slow_store  # type: ignore[method-assign]
        listener = SyslogListener(
            importer, "127.0.0.1", 0, batch_lines=10, batch_seconds=3600, queue_lines=50
        )
    thread = start(listener)
    try:
        lines = [syslog(json_line(f"/m{n}", when + dt.timedelta(seconds=n))) for n in range(300)]
        send(listener.address, lines[:10])
        wait_for(lambda: listener.queue.empty() and len(importer.buffer) == 10, 10, "a batch")
        send(listener.address, lines[10:])
        wait_for(lambda: listener.received == 300, 10, "every datagram")
        assert listener.queue.qsize() == 50  # never more than the bound
        assert listener.dropped == 240
    finally:
        gate.set()
        listener.stop()
        thread.join(30)
    assert not thread.is_alive()
    paths = [row["doc_path"] for row in stored(app)]
    assert paths == [f"/m{n}" for n in range(60)]  # the batch in hand and the queue
    assert "dropped 240" in listener.status()


def test_datagrams_the_socket_buffer_lost_are_counted_as_dropped(app, site):
    when = dt.datetime(2024, 10, 1, 12, tzinfo=dt.UTC)
    with app.app_context():
        listener = SyslogListener(LogImporter(app, db.engine), "127.0.0.1", 0, batch_lines=50)
    # a tiny buffer, and nobody reading yet: the kernel keeps a few and drops the rest
    listener.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lines = [syslog(json_line(f"/k{n}", when + dt.timedelta(seconds=n))) for n in range(200)]
    send(listener.address, lines)
    thread = start(listener)
    try:
        wait_for(lambda: listener.received > 0, 10, "the buffered datagrams")
        time.sleep(0.3)
        # the next datagram carries the kernel's count of those it dropped
        send(listener.address, [syslog(json_line("/last", when + dt.timedelta(hours=1)))])
        wait_for(lambda: listener.overflowed > 0, 10, "the drop count")
        assert listener.received + listener.overflowed == 201
        assert f"dropped {listener.overflowed}" in listener.status()
    finally:
        listener.stop()
        thread.join(30)
    assert len(stored(app)) == listener.received


def test_a_batch_the_database_refuses_is_tried_again(app, site):
    when = dt.datetime(2024, 10, 1, 12, tzinfo=dt.UTC)
    reports: list[str] = []
    with app.app_context():
        importer = LogImporter(app, db.engine)
        real_store = importer._store
        failures = [StoreFailed("database: connection refused")] * 2

        def flaky_store(rows):
            if failures:
                raise failures.pop()
            real_store(rows)

        importer._store = flaky_store  # type: ignore[method-assign]
        listener = SyslogListener(
            importer, "127.0.0.1", 0, batch_lines=3, batch_seconds=3600, report=reports.append
        )
    thread = start(listener)
    try:
        send(listener.address, [syslog(json_line(f"/f{n}", when)) for n in range(3)])
        wait_for(lambda: len(stored(app)) == 3, 20, "the retried batch")
    finally:
        listener.stop()
        thread.join(30)
    assert reports[:2] == [
        "database: connection refused; trying again in 0.5 s",
        "database: connection refused; trying again in 1 s",
    ]


def test_a_log_file_of_the_lines_syslog_stored_adds_only_the_missing_ones(app, site, tmp_path):
    """nginx may write the same JSON lines to a file: importing it fills a gap, nothing more."""
    when = dt.datetime(2024, 10, 1, 12, tzinfo=dt.UTC)
    lines = [json_line(f"/g{n}", when + dt.timedelta(seconds=n // 2)) for n in range(40)]
    lines[11] = lines[10]  # the same request twice in its second: two views
    with app.app_context():
        listener = SyslogListener(LogImporter(app, db.engine), "127.0.0.1", 0, batch_lines=10)
    thread = start(listener)
    try:
        # the listener was down for lines 20-29
        send(listener.address, [syslog(line) for line in lines[:20] + lines[30:]])
        wait_for(lambda: len(stored(app)) == 30, 20, "the received lines")
    finally:
        listener.stop()
        thread.join(30)
    with app.app_context():
        importer = LogImporter(app, db.engine)
        for number, line in enumerate(lines, 1):
            importer.add(line.encode(), str(tmp_path / "access.json"), number)
        done = importer.finish()
    assert (done.stored, done.skipped["duplicate"]) == (10, 30)
    paths = sorted(row["doc_path"] for row in stored(app))
    assert len(paths) == 40 and paths.count("/g10") == 2


# ---- with nginx and the command --------------------------------------------------------------


def readme_nginx_lines(port: int) -> tuple[str, str]:
    """README's nginx block: the ``http``-level lines and the ``access_log`` line."""
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- nginx-syslog -->", 1)[1].split("```nginx\n", 1)[1].split("```")[0]
    access = [line for line in block.splitlines() if line.startswith("access_log syslog:")]
    assert len(access) == 1
    assert "server=127.0.0.1:65140," in access[0]
    http_part = block.replace(access[0], "")
    return http_part, access[0].replace("127.0.0.1:65140", f"127.0.0.1:{port}")


@pytest.fixture
def web_dir() -> Iterator[Path]:
    """A folder nginx's workers can read (pytest's tmp_path is private)."""
    path = Path(tempfile.mkdtemp(prefix="crumby-syslog-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_nginx(folder: Path, port: int, syslog_port: int) -> subprocess.Popen:
    http_part, access = readme_nginx_lines(syslog_port)
    temp = folder / "nginx-temp"
    temp.mkdir()
    shutil.chown(temp, RUN_USER, RUN_GROUP)
    config = folder / "nginx.conf"
    config.write_text(
        "\n".join(
            [
                "daemon off;",
                f"pid {folder / 'nginx.pid'};",
                f"error_log {folder / 'nginx-error.log'} info;",
                *([f"user {RUN_USER};"] if os.geteuid() == 0 else []),
                "events { worker_connections 64; }",
                "http {",
                f"  access_log {folder / 'nginx-access.log'};",
                *(
                    f"  {kind}_temp_path {temp / kind};"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
                ),
                http_part,
                "  server {",
                f"    listen 127.0.0.1:{port};",
                "    server_name example.org;",
                f"    {access}",
                '    location / { default_type text/html; return 200 "a page\\n"; }',
                '    location = /style.css { default_type text/css; return 200 "p{}\\n"; }',
                "    location = /gone { return 404; }",
                "  }",
                "}",
            ]
        )
        + "\n"
    )
    process = subprocess.Popen(
        ["/usr/sbin/nginx", "-c", str(config), "-p", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    wait_until_serving(f"http://127.0.0.1:{port}", process, [folder / "nginx-error.log"])
    return process


def unit_command(port: int, *extra: str) -> list[str]:
    """ExecStart of crumby-syslog.service, with this test run's crumby and port."""
    line = next(line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0] == "/opt/crumby/venv/bin/crumby" and argv[1] == "syslog"
    argv[0] = str(Path(sys.executable).with_name("crumby"))
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "65140"
    argv[argv.index("--port") + 1] = str(port)
    return [*argv, *extra]


class Listener:
    """``crumby syslog`` as a child process, its stderr collected."""

    def __init__(self, argv: list[str], env: dict[str, str], folder: Path) -> None:
        self.log = folder / "syslog.err"
        self.process = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("w")
        )
        wait_for(lambda: "listening on udp" in self.text() or self.process.poll() is not None)
        assert self.process.poll() is None, self.text()

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def get(port: int, path: str, agent: str = FIREFOX, method: str = "GET") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            method,
            path,
            headers={"Host": "example.org", "User-Agent": agent, "Referer": "https://ref.example/"},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture
def listener_env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, "CRUMBY_SECRET_KEY": "test-secret", "CRUMBY_GEOIP2_DATABASE_NAME": "/none"}


def test_requests_through_nginx_become_visits(app, site, web_dir, listener_env):
    port, syslog_port = free_port(), free_udp_port()
    listener = Listener(unit_command(syslog_port), listener_env, web_dir)
    nginx = None
    try:
        nginx = start_nginx(web_dir, port, syslog_port)
        before = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        assert get(port, "/") == 200
        assert get(port, "/pricing?utm_source=news") == 200
        assert get(port, "/style.css") == 200  # an asset
        assert get(port, "/gone") == 404  # an error
        assert get(port, "/", agent=GOOGLEBOT) == 200  # a bot
        assert get(port, "/form", method="POST") == 200  # not a GET
        after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        wait_for(lambda: len(stored(app)) == 2, 20, "two visits")
        time.sleep(1.5)  # a batch more: nothing else arrives
        rows = stored(app)
    finally:
        if nginx is not None:
            stop(nginx, signal.SIGQUIT)
        stop(listener.process)
    assert listener.process.returncode == 0, listener.text()
    assert [row["doc_uri"] for row in rows] == [
        "http://example.org/",
        "http://example.org/pricing?utm_source=news",
    ]
    first, second = rows
    assert first["site_id"] == site.id and first["doc_path"] == "/"
    assert first["referrer"] == "https://ref.example/"
    assert first["ip"] == "127.0.0.0"  # anonymised
    assert (first["browser"], first["platform"]) == ("Firefox", "Linux")
    assert second["utm_source"] == "news" and second["cid"] == first["cid"]
    assert (second["session_seq"], second["session_start"]) == (2, first["datetime"])
    # the time nginx logged (its $time_iso8601, to the second), in UTC
    assert before <= first["datetime"] <= second["datetime"] <= after
    stopped = re.search(r"stopped: received (\d+), stored (\d+), skipped (\d+)", listener.text())
    assert stopped and stopped.groups() == ("6", "2", "4"), listener.text()


def test_sigterm_stores_the_batch_in_hand(app, site, web_dir, listener_env):
    port, syslog_port = free_port(), free_udp_port()
    argv = unit_command(
        syslog_port, "--batch-seconds", "3600", "--batch-lines", "10000", "--stats-seconds", "0.2"
    )
    listener = Listener(argv, listener_env, web_dir)
    nginx = None
    try:
        nginx = start_nginx(web_dir, port, syslog_port)
        for n in range(7):
            assert get(port, f"/held{n}") == 200
        wait_for(lambda: "received 7," in listener.text(), 20, "seven lines received")
        time.sleep(0.5)
        assert stored(app) == []  # in hand: the batch is neither full nor an hour old
        listener.process.send_signal(signal.SIGTERM)
        listener.process.wait(30)
    finally:
        if nginx is not None:
            stop(nginx, signal.SIGQUIT)
        stop(listener.process)
    assert listener.process.returncode == 0, listener.text()
    assert sorted(row["doc_path"] for row in stored(app)) == [f"/held{n}" for n in range(7)]
    assert "stopped: received 7, stored 7" in listener.text()


def test_a_port_in_use_is_a_one_line_error(listener_env, web_dir):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = subprocess.run(
            unit_command(port), env=listener_env, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 1
    assert f"cannot listen on udp 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    unit = tmp_path / "crumby-syslog.service"
    unit.write_text(
        UNIT.read_text().replace(
            "/opt/crumby/venv/bin/crumby", str(Path(sys.executable).with_name("crumby"))
        )
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "crumby-syslog" in line] == []
