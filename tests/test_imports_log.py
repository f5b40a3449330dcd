"""``crumby ingest-log``: access logs become visits through the ingest pipeline, once each.

Every test runs on each database of CRUMBY_TEST_DATABASES. Expected values
are worked out here from the lines the test wrote, never read back from SQL.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import random
import re
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask

from crumby import create_app
from crumby.cli import cli
from crumby.database import SCHEMA_VERSION, ensure_schema
from crumby.extensions import db
from crumby.imports import commands, forked
from crumby.imports.importer import LineReader, LogImporter, StoreFailed
from crumby.imports.sources import open_source
from crumby.ingest import sessions
from crumby.ingest.salts import anonymous_id
from crumby.models import ImportKey, Visit, VisitorSalt
from crumby.reporting import get_query, run_query
from crumby.sites import add_site, delete_site, find_site
from tests.mmdb_factory import write_city_database

SECRET = "test-secret"  # the conftest app's SECRET_KEY
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PACIFIC = dt.timezone(dt.timedelta(hours=-7))
T = dt.datetime(2024, 10, 10, 13, 55, 36, tzinfo=PACIFIC)  # 20:55:36 UTC


def combined(
    ip: str,
    when: dt.datetime,
    path: str,
    *,
    status: int = 200,
    method: str = "GET",
    referrer: str = "-",
    ua: str = FIREFOX,
) -> str:
    """One line of the combined format, as nginx writes it."""
    stamp = when.strftime("%d/%b/%Y:%H:%M:%S %z")
    return f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} 5120 "{referrer}" "{ua}"'


def ballcone(address: str, vhost: str, when: dt.datetime, target: str, **fields) -> str:
    """One line of Ballcone's nginx JSON log format; ``fields`` replace or add fields."""
    item = {
        "ip": address,
        "host": vhost,
        "path": target,
        "status": "200",
        "referrer": "",
        "user_agent": FIREFOX,
        "length": 5120,
        "generation_time_milli": 0.004,
        "date": when.isoformat(),
    }
    item.update(fields)
    return json.dumps(item)


def utc(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(tzinfo=None)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_import_keys(app: Flask):
    """The conftest empties the data tables between tests; the import keys go too."""

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


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **cli_env,
        "CRUMBY_SECRET_KEY": SECRET,
        "CRUMBY_GEOIP2_DATABASE_NAME": str(tmp_path / "no-geoip.mmdb"),
    }


@pytest.fixture
def ingest(env: dict[str, str]):
    """Run ``crumby ingest-log ARGS`` in-process; the click Result."""
    runner = CliRunner(env=env)

    def run(*args: str, input: bytes | str | None = None):
        return runner.invoke(cli, ["ingest-log", *args], input=input, catch_exceptions=False)

    return run


def summary(output: str) -> dict[str, int]:
    """stored / skipped / malformed / lines of the printed summary."""
    return {k: int(v) for k, v in re.findall(r"^(\w+): (\d+)", output, re.MULTILINE)}


def skipped(output: str) -> dict[str, int]:
    match = re.search(r"^skipped: \d+ \((.*)\)$", output, re.MULTILINE)
    if not match:
        return {}
    return {k: int(v) for k, v in (part.split(" ") for part in match[1].split(", "))}


def stored_visits(app: Flask) -> list[dict]:
    with app.app_context():
        table = Visit.__table__
        rows = db.session.execute(sa.select(table).order_by(table.c.datetime, table.c.id))
        return [dict(row._mapping) for row in rows]


def key_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(ImportKey)) or 0


# ---- formats and columns --------------------------------------------------------------------


def test_combined_lines_become_visits_as_tracker_hits_would(app, site, ingest, tmp_path):
    log = write(
        tmp_path / "access.log",
        [
            combined(
                "203.0.113.9",
                T,
                "/pricing?utm_source=news&utm_medium=email",
                referrer="https://www.google.com/search?q=x",
            ),
            combined("203.0.113.9", T + dt.timedelta(minutes=2), "/docs/", referrer="-"),
            combined("198.51.100.7", T + dt.timedelta(minutes=3), "/", ua=IPHONE),
        ],
    )
    result = ingest("--site", "example.org", str(log))
    assert result.exit_code == 0, result.output
    assert summary(result.output) == {"lines": 3, "stored": 3, "skipped": 0, "malformed": 0}
    rows = stored_visits(app)
    day = dt.date(2024, 10, 10)  # the UTC day of the lines
    first, second, third = rows
    assert first["datetime"] == dt.datetime(2024, 10, 10, 20, 55, 36)  # -0700 -> UTC
    assert first["site_id"] == site.id
    assert first["doc_uri"] == "https://example.org/pricing?utm_source=news&utm_medium=email"
    assert first["doc_path"] == "/pricing"
    assert first["doc_host"] == "example.org"
    assert first["referrer"] == "https://www.google.com/search?q=x"
    assert first["referrer_host"] == "www.google.com"
    assert (first["browser"], first["platform"], first["device"]) == ("Firefox", "Linux", "desktop")
    assert (first["utm_source"], first["utm_medium"]) == ("news", "email")
    assert first["ip"] == "203.0.113.0"  # ANONYMIZE_IP is on by default
    # the anonymous daily id of the line's (full) address and User-Agent, as the tracker's
    assert first["cid"] == anonymous_id(salt_of(app, day), site.id, "203.0.113.9", FIREFOX)
    assert second["cid"] == first["cid"] and second["referrer"] is None
    assert (second["session_seq"], second["session_gap"]) == (2, 120.0)
    assert third["cid"] == anonymous_id(salt_of(app, day), site.id, "198.51.100.7", IPHONE)
    assert third["cid"] != first["cid"]
    assert (third["browser"], third["platform"], third["device"]) == (
        "Mobile Safari",
        "iOS",
        "mobile",
    )
    assert all(row["is_bot"] is False or row["is_bot"] == 0 for row in rows)


def test_ballcone_json_lines_take_their_site_from_the_host_field(app, site, ingest, tmp_path):
    with app.app_context(), db.engine.begin() as connection:
        other = add_site(connection, "other.example")
    when = dt.datetime(2024, 10, 10, 22, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    log = write(
        tmp_path / "access.json",
        [
            ballcone("198.51.100.7", "www.example.org", when, "/a?x=1", referrer="https://t.co/"),
            ballcone("198.51.100.7", "other.example", when, "/b", scheme="http"),
            ballcone("198.51.100.7", "unknown.example", when, "/c"),
            ballcone("198.51.100.7", "example.org", when, "/form", method="POST"),
            # $msec-style date, a numeric status, no length fields at all
            json.dumps(
                {
                    "ip": "198.51.100.8",
                    "host": "example.org",
                    "path": "/d",
                    "status": 200,
                    "referrer": "-",
                    "user_agent": CHROME,
                    "date": 1728597600,
                }
            ),
            # without an offset the date is UTC
            ballcone("198.51.100.9", "example.org", dt.datetime(2024, 10, 10, 23, 0), "/e"),
        ],
    )
    result = ingest(str(log))
    assert result.exit_code == 0, result.output
    assert summary(result.output)["stored"] == 4
    assert skipped(result.output) == {"unknown_site": 1, "method": 1}
    rows = {row["doc_path"]: row for row in stored_visits(app)}
    assert set(rows) == {"/a", "/b", "/d", "/e"}
    assert rows["/a"]["site_id"] == site.id  # www. folded
    assert rows["/a"]["doc_uri"] == "https://www.example.org/a?x=1"
    assert rows["/a"]["referrer"] == "https://t.co/"
    assert rows["/a"]["datetime"] == dt.datetime(2024, 10, 10, 20, 0, 0)
    assert rows["/b"]["site_id"] == other.id
    assert rows["/b"]["doc_uri"] == "http://other.example/b"
    assert rows["/d"]["datetime"] == dt.datetime(2024, 10, 10, 22, 0, 0)
    assert rows["/d"]["browser"] == "Chrome" and rows["/d"]["referrer"] is None
    assert rows["/e"]["datetime"] == dt.datetime(2024, 10, 10, 23, 0, 0)


def test_site_option_stores_every_line_under_that_site(app, site, ingest, tmp_path):
    log = write(
        tmp_path / "access.json",
        [
            ballcone("198.51.100.7", "example.org", T, "/a"),
            ballcone("198.51.100.7", "unregistered.example", T, "/b"),
            combined("198.51.100.7", T, "/c"),
        ],
    )
    result = ingest("--site", "www.example.org", str(log))
    assert summary(result.output)["stored"] == 3, result.output
    assert {row["site_id"] for row in stored_visits(app)} == {site.id}


def test_combined_lines_without_site_option_or_vhost_are_skipped_as_no_host(
    app, site, ingest, tmp_path
):
    log = write(
        tmp_path / "access.log",
        [
            combined("203.0.113.9", T, "/a"),
            # Apache's vhost_combined names the host first
            "example.org:443 " + combined("203.0.113.9", T, "/b"),
        ],
    )
    result = ingest(str(log))
    assert result.exit_code == 0
    assert skipped(result.output) == {"no_host": 1}
    assert "--site" in result.output
    assert [row["doc_uri"] for row in stored_visits(app)] == ["https://example.org/b"]


def test_assets_bots_errors_redirects_and_other_methods_are_skipped_by_reason(
    app, site, ingest, tmp_path
):
    lines = [
        combined("203.0.113.9", T, "/"),
        combined("203.0.113.9", T, "/static/site.css"),
        combined("203.0.113.9", T, "/app.js?v=3"),
        combined("203.0.113.9", T, "/img/logo.PNG"),
        combined("203.0.113.9", T, "/favicon.ico"),
        combined("203.0.113.9", T, "/fonts/a.woff2"),
        combined("203.0.113.9", T, "/logo.svg#icon"),
        combined("66.249.66.1", T, "/", ua=GOOGLEBOT),
        combined("203.0.113.9", T, "/", ua="curl/8.5.0"),
        combined("203.0.113.9", T, "/", ua="-"),
        combined("203.0.113.9", T, "/missing", status=404),
        combined("203.0.113.9", T, "/broken", status=500),
        combined("203.0.113.9", T, "/old", status=301),
        combined("203.0.113.9", T, "/login", method="POST"),
        combined("203.0.113.9", T, "/", method="HEAD"),
        combined("203.0.113.9", T, "/cached", status=304),
        combined("203.0.113.9", T, "/v1.2/notes"),  # a dot in a folder is no extension
        combined("203.0.113.9", T, "/report.pdf"),  # documents are pages
        "",
    ]
    result = ingest("--site", "example.org", str(write(tmp_path / "a.log", lines)))
    assert summary(result.output) == {"lines": 19, "stored": 4, "skipped": 15, "malformed": 0}
    assert skipped(result.output) == {
        "asset": 6,
        "bot": 3,
        "error": 2,
        "redirect": 1,
        "method": 2,
        "blank": 1,
    }
    assert sorted(row["doc_path"] for row in stored_visits(app)) == [
        "/",
        "/cached",
        "/report.pdf",
        "/v1.2/notes",
    ]


# ---- malformed lines ------------------------------------------------------------------------


def test_every_kind_of_malformed_line_is_reported_by_number_and_the_rest_lands(
    app, site, ingest, tmp_path
):
    good = [combined("203.0.113.9", T + dt.timedelta(seconds=n), f"/ok{n}") for n in range(12)]
    bad = [
        "not a log line at all",
        good[0].replace("10/Oct/2024", "10/Foo/2024"),  # no such month
        good[0].replace("13:55:36 -0700", "25:55:36 -0700"),  # no such hour
        good[0].replace("-0700", "+07x0"),  # a broken zone
        good[0].replace(" 200 ", " 2x0 "),  # status not a number
        good[0].replace(" 200 ", " 999 "),  # not an HTTP status
        good[0].replace('"GET /ok0 HTTP/1.1"', '"\\x16\\x03\\x01"'),  # junk with a 200
        good[0].replace("/ok0", "ok0"),  # a target that is not a path
        '{"ip": "1.2.3.4", "host": "example.org"',  # broken JSON
        "[1, 2, 3]",
        ballcone("1.2.3.4", "example.org", T, "/j", path=None),
        ballcone("1.2.3.4", "example.org", T, "/j", date="yesterday"),
        ballcone("1.2.3.4", "example.org", T, "/j", status="OK"),
        ballcone("1.2.3.4", "example.org", T, "/j", host="exa mple/org"),
        ballcone("1.2.3.4", "example.org", T, "/j", host=42),
        ballcone("1.2.3.4", "example.org", T, "/j", length="lots"),
        ballcone("1.2.3.4", "example.org", T, "/j", path=None),
        "x" * 70_000,  # longer than any server writes
    ]
    lines: list[str] = []
    for n, line in enumerate(bad):
        lines.append(good[n] if n < len(good) else good[-1].replace("/ok11", f"/late{n}"))
        lines.append(line)
    log = tmp_path / "bad.log"
    write(log, lines)
    with log.open("ab") as fh:  # bytes that are not UTF-8 in a good line still land
        fh.write(combined("203.0.113.9", T, "/caf\xe9").encode("latin-1") + b"\n")
    result = ingest("--site", "example.org", str(log))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    counts = summary(result.output)
    assert counts["malformed"] == len(bad)
    assert counts["stored"] == len(bad) + 1 == len(stored_visits(app))
    numbers = [
        int(n) for n in re.findall(rf"^  {re.escape(str(log))}:(\d+): ", result.output, re.M)
    ]
    assert numbers == [2 * n + 2 for n in range(10)]  # the first ten, by line number
    assert f"... and {len(bad) - 10} more" in result.output
    reasons = re.findall(r"^  .*:\d+: (.*)$", result.output, re.M)
    assert reasons[0] == "not a combined log line"
    assert "bad time" in reasons[1] and "bad time" in reasons[2] and "bad time" in reasons[3]
    assert reasons[4] == reasons[5] == "status is not an HTTP status"
    assert reasons[6] == "not an HTTP request line"
    assert reasons[7] == "the request target is not a path"
    assert reasons[8] == "not valid JSON" and reasons[9] == "not a JSON object"
    assert "/caf\ufffd" in {row["doc_path"] for row in stored_visits(app)}


def test_the_last_malformed_kinds_are_reported_too(app, site, ingest, tmp_path):
    lines = [
        ballcone("1.2.3.4", "example.org", T, "/j", date="yesterday"),
        ballcone("1.2.3.4", "example.org", T, "/j", status="OK"),
        ballcone("1.2.3.4", "example.org", T, "/j", host="exa mple/org"),
        ballcone("1.2.3.4", "example.org", T, "/j", host=42),
        ballcone("1.2.3.4", "example.org", T, "/j", length="lots"),
        ballcone("1.2.3.4", "example.org", T, "/j", path=None),
        ballcone("1.2.3.4", "example.org", T, "/j", scheme="ftp"),
        "x" * 70_000,
    ]
    result = ingest(str(write(tmp_path / "bad.json", lines)))
    assert result.exit_code == 0
    reasons = re.findall(r"^  .*:(\d+): (.*)$", result.output, re.M)
    assert reasons == [
        ("1", "date 'yesterday' is not ISO 8601"),
        ("2", "status is not an HTTP status"),
        ("3", "host is not a host name"),
        ("4", "host is not text"),
        ("5", "length is not a number"),
        ("6", "path is missing"),
        ("7", "scheme is not http or https"),
        ("8", "line longer than 65536 bytes"),
    ]
    assert summary(result.output)["stored"] == 0


# ---- sources --------------------------------------------------------------------------------


def _some_lines() -> list[str]:
    return [
        combined(f"203.0.113.{n % 5}", T + dt.timedelta(minutes=n), f"/p{n % 7}") for n in range(20)
    ]


def test_gzip_files_are_read_by_their_content(app, site, ingest, tmp_path):
    lines = _some_lines()
    packed = tmp_path / "access.log.2.gz"
    packed.write_bytes(gzip.compress("\n".join(lines).encode()))  # no newline at the end
    result = ingest("--site", "example.org", str(packed))
    assert summary(result.output)["stored"] == 20, result.output
    assert sorted(r["doc_path"] for r in stored_visits(app)) == sorted(
        f"/p{n % 7}" for n in range(20)
    )


def test_a_damaged_gzip_file_keeps_what_was_read_and_exits_non_zero(app, site, ingest, tmp_path):
    packed = gzip.compress("\n".join(_some_lines()).encode() * 50)
    damaged = tmp_path / "access.log.gz"
    damaged.write_bytes(packed[: len(packed) // 2])
    result = ingest("--site", "example.org", str(damaged))
    assert result.exit_code == 1
    assert "cannot read further" in result.output and "Traceback" not in result.output
    assert summary(result.output)["stored"] > 0


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_stdin_is_read_with_a_dash_or_without_files(
    app, site, env, crumby_script, tmp_path, packed
):
    data = "\n".join(_some_lines()).encode() + b"\n"
    if packed:
        data = gzip.compress(data)
    for args in (["-"], []):
        result = subprocess.run(
            [crumby_script, "ingest-log", "--site", "example.org", *args],
            input=data,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert b"Traceback" not in result.stderr
    assert len(stored_visits(app)) == 20  # the second read stored nothing new
    assert summary(result.stdout.decode())["stored"] == 0
    assert skipped(result.stdout.decode()) == {"duplicate": 20}


def test_unusable_input_exits_non_zero_with_one_line(app, site, ingest, tmp_path):
    good = write(tmp_path / "good.log", _some_lines())
    missing = ingest("--site", "example.org", str(good), str(tmp_path / "missing.log"))
    assert missing.exit_code == 1
    assert missing.output.strip() == f"Error: {tmp_path / 'missing.log'}: No such file or directory"
    assert stored_visits(app) == []  # nothing stored: every file is opened first
    unknown = ingest("--site", "nowhere.example", str(good))
    assert unknown.exit_code == 1 and "no such site: nowhere.example" in unknown.output
    folder = ingest("--site", "example.org", str(tmp_path))
    assert folder.exit_code == 1 and "Traceback" not in folder.output
    bad_format = ingest("--format", "xml", str(good))
    assert bad_format.exit_code == 2 and "'xml' is not one of" in bad_format.output
    assert stored_visits(app) == []


# ---- idempotency ----------------------------------------------------------------------------


def test_the_same_file_twice_stores_each_line_once(app, site, ingest, tmp_path):
    lines = _some_lines()
    # the same request twice in one second: two views, both stored, once each
    lines += [combined("198.51.100.1", T, "/twice")] * 2
    log = write(tmp_path / "access.log", lines)
    first = ingest("--site", "example.org", str(log))
    assert summary(first.output)["stored"] == 22
    before = stored_visits(app)
    second = ingest("--site", "example.org", str(log))
    assert summary(second.output)["stored"] == 0
    assert skipped(second.output) == {"duplicate": 22}
    assert stored_visits(app) == before
    assert sum(1 for row in before if row["doc_path"] == "/twice") == 2
    assert key_count(app) == 22


def test_a_rotated_file_that_overlaps_stores_the_overlap_once(app, site, ingest, tmp_path):
    lines = [
        combined(f"203.0.113.{n % 9}", T + dt.timedelta(seconds=37 * n), f"/r{n}")
        for n in range(100)
    ]
    # logrotate's copytruncate: the old file got lines 0-59, the new one starts at line 40
    rotated = tmp_path / "access.log.1.gz"
    rotated.write_bytes(gzip.compress(("\n".join(lines[:60]) + "\n").encode()))
    current = write(tmp_path / "access.log", lines[40:])
    first = ingest("--site", "example.org", str(rotated))
    second = ingest("--site", "example.org", str(current))
    assert summary(first.output)["stored"] == 60
    assert summary(second.output)["stored"] == 40
    assert skipped(second.output) == {"duplicate": 20}
    paths = [row["doc_path"] for row in stored_visits(app)]
    assert sorted(paths) == sorted(f"/r{n}" for n in range(100))
    # both files again, in one command: nothing new
    again = ingest("--site", "example.org", str(rotated), str(current))
    assert summary(again.output)["stored"] == 0
    assert skipped(again.output) == {"duplicate": 120}


def test_the_same_lines_under_two_sites_are_two_sites_views(app, site, ingest, tmp_path):
    with app.app_context(), db.engine.begin() as connection:
        other = add_site(connection, "other.example")
    log = write(tmp_path / "access.log", _some_lines())
    ingest("--site", "example.org", str(log))
    result = ingest("--site", "other.example", str(log))
    assert summary(result.output)["stored"] == 20
    assert Counter(row["site_id"] for row in stored_visits(app)) == {site.id: 20, other.id: 20}


def test_delsite_forgets_the_sites_import_keys(app, site, ingest, env, tmp_path):
    log = write(tmp_path / "access.log", _some_lines())
    ingest("--site", "example.org", str(log))
    with app.app_context(), db.engine.begin() as connection:
        delete_site(connection, "example.org")
        add_site(connection, "example.org")
    assert key_count(app) == 0
    result = ingest("--site", "example.org", str(log))
    assert summary(result.output)["stored"] == 20


def test_two_imports_of_the_same_lines_at_once_store_them_once(app, site):
    lines = [
        combined(f"203.0.113.{n % 50}", T + dt.timedelta(seconds=n), f"/c{n}").encode()
        for n in range(3000)
    ]
    outcomes: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                importer = LogImporter(app, db.engine, site=site, batch=250)
                for number, line in enumerate(lines, 1):
                    importer.add(line, "x", number)
                done = importer.finish()
                outcomes.append((done.stored, done.skipped["duplicate"]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(stored for stored, _ in outcomes) == 3000
    assert sum(duplicates for _, duplicates in outcomes) == 3000
    assert len(stored_visits(app)) == 3000


# ---- sessions and reports -------------------------------------------------------------------


def python_sessions(views: list[tuple[dt.datetime, str]]) -> dict[str, list[list[dt.datetime]]]:
    """Each visitor's sessions: runs of views with gaps of at most 30 minutes."""
    by_cid: dict[str, list[dt.datetime]] = defaultdict(list)
    for when, cid in sorted(views):
        by_cid[cid].append(when)
    found: dict[str, list[list[dt.datetime]]] = {}
    for cid, times in by_cid.items():
        runs = [[times[0]]]
        for before, when in zip(times, times[1:], strict=False):
            if (when - before).total_seconds() > 1800:
                runs.append([])
            runs[-1].append(when)
        found[cid] = runs
    return found


def test_sessions_stitch_across_batches_in_time_order(app, site):
    """Lines a little out of order (written when requests end) still chain correctly."""
    rng = random.Random(3)
    visitors = [(f"203.0.113.{n}", rng.choice([FIREFOX, IPHONE, CHROME])) for n in range(8)]
    events = []
    for ip, ua in visitors:
        when = T
        for _ in range(15):
            when += dt.timedelta(seconds=rng.choice([5, 60, 600, 1799, 1800, 1801, 2400]))
            events.append((when, ip, ua))
    events.sort()
    # every fifth line is written two lines late
    order = list(range(len(events)))
    for n in range(0, len(order) - 2, 5):
        order[n], order[n + 2] = order[n + 2], order[n]
    lines = [
        combined(ip, when, "/s", ua=ua).encode() for when, ip, ua in (events[n] for n in order)
    ]
    with app.app_context():
        importer = LogImporter(app, db.engine, site=site, batch=7)  # many small batches
        for number, line in enumerate(lines, 1):
            importer.add(line, "x", number)
        importer.finish()
    rows = stored_visits(app)
    assert len(rows) == len(events)
    # the visitor id is a daily one: a new UTC day, a new visitor
    expected = python_sessions(
        [
            (utc(when), anonymous_id(salt_of(app, utc(when).date()), site.id, ip, ua))
            for when, ip, ua in events
        ]
    )
    stitched: dict[str, list[list[dt.datetime]]] = defaultdict(list)
    for row in rows:
        if row["session_seq"] == 1:
            stitched[row["cid"]].append([])
        stitched[row["cid"]][-1].append(row["datetime"])
        runs = stitched[row["cid"]]
        assert row["session_start"] == runs[-1][0]
        assert row["session_seq"] == len(runs[-1])
    assert dict(stitched) == expected
    assert sum(len(runs) for runs in expected.values()) > len(visitors)  # there were gaps


def test_a_visitor_with_hundreds_of_views_in_half_an_hour_is_looked_up_by_probe(
    app, site, monkeypatch
):
    """Past VIEWS_PER_VISITOR views a visitor, stitching reads one view per visitor, not all."""
    probes: list[int] = []
    real = sessions._newest_views_statement

    def counted(count: int):
        probes.append(count)
        return real(count)

    monkeypatch.setattr(sessions, "_newest_views_statement", counted)
    lines = [
        combined("203.0.113.9", T + dt.timedelta(seconds=5 * n), f"/v{n}").encode()
        for n in range(300)  # 25 minutes: one session
    ]
    lines.append(combined("198.51.100.1", T, "/other").encode())
    with app.app_context():
        importer = LogImporter(app, db.engine, site=site, batch=20)
        for number, line in enumerate(lines, 1):
            importer.add(line, "x", number)
        importer.finish()
    rows = [row for row in stored_visits(app) if row["doc_path"] != "/other"]
    assert [row["session_seq"] for row in rows] == list(range(1, 301))
    assert {row["session_start"] for row in rows} == {utc(T)}
    assert probes and set(probes) <= set(sessions.PROBE_SIZES)


def test_a_later_import_continues_the_sessions_of_an_earlier_one(app, site, ingest, tmp_path):
    ingest("--site", "example.org", str(write(tmp_path / "1.log", [combined("1.2.3.4", T, "/a")])))
    later = [combined("1.2.3.4", T + dt.timedelta(minutes=10), "/b")]
    ingest("--site", "example.org", str(write(tmp_path / "2.log", later)))
    first, second = stored_visits(app)
    assert second["cid"] == first["cid"]
    assert (second["session_seq"], second["session_gap"]) == (2, 600.0)
    assert second["session_start"] == first["datetime"]


def salt_of(app, day: dt.date) -> bytes:
    """The stored salt of a UTC day's anonymous ids."""
    with app.app_context():
        value = db.session.scalar(sa.select(VisitorSalt.salt).where(VisitorSalt.day == day))
        db.session.remove()
    assert value is not None, f"no salt for {day}"
    return bytes.fromhex(value)


def generated_log(seed: int = 11) -> tuple[list[str], list[dict]]:
    """Three days of a small site's log, and the views it must store, worked out here."""
    rng = random.Random(seed)
    agents = [FIREFOX, IPHONE, CHROME]
    visitors = [(f"198.51.{rng.randint(0, 255)}.{n}", rng.choice(agents)) for n in range(25)]
    pages = ["/", "/pricing", "/blog/one", "/blog/two?ref=x", "/docs/"]
    lines: list[tuple[dt.datetime, str]] = []
    views: list[dict] = []
    start = dt.datetime(2024, 3, 1, 0, 0, tzinfo=PACIFIC)
    for day in range(3):
        for _ in range(30):
            ip, ua = rng.choice(visitors)
            when = start + dt.timedelta(days=day, minutes=rng.randint(0, 24 * 60 - 1))
            for _ in range(rng.randint(1, 4)):
                page = rng.choice(pages)
                lines.append((when, combined(ip, when, page, ua=ua)))
                when_utc = utc(when)
                views.append(
                    {
                        "datetime": when_utc,
                        # one visitor per UTC day, address and browser (only equality counts)
                        "cid": f"{when_utc.date()}|{ip}|{ua}",
                        "page": page.split("?")[0],
                    }
                )
                # what a page view brings along, none of it a view
                lines.append((when, combined(ip, when, "/static/site.css", ua=ua)))
                if rng.random() < 0.2:
                    lines.append((when, combined(ip, when, "/gone", status=404, ua=ua)))
                when += dt.timedelta(minutes=rng.choice([1, 3, 20, 29, 31, 45]))
            if rng.random() < 0.3:
                crawl = start + dt.timedelta(days=day, hours=rng.randint(0, 23))
                lines.append((crawl, combined("66.249.66.1", crawl, "/", ua=GOOGLEBOT)))
    lines.sort(key=lambda item: item[0])
    return [line for _, line in lines], views


def test_reports_of_an_imported_log_match_answers_worked_out_in_python(app, site, ingest, tmp_path):
    lines, views = generated_log()
    result = ingest("--site", "example.org", str(write(tmp_path / "access.log", lines)))
    assert summary(result.output)["stored"] == len(views), result.output
    t0, t1 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)  # UTC days; the log spans 3-4 of them
    lo, hi = dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 3)
    inside = [v for v in views if lo <= v["datetime"] < hi]
    sessions = [
        run
        for runs in python_sessions([(v["datetime"], v["cid"]) for v in views]).values()
        for run in runs
        if lo <= run[0] < hi
    ]
    with app.app_context():
        stored_site = find_site(db.session.connection(), "example.org")
        answer = {
            name: run_query(get_query("public", name), stored_site, t0, t1, use_cache=False)
            for name in ("summary", "documents", "visits")
        }
    visitors, count, session_count, bounce, duration = answer["summary"].data[0]
    assert (visitors, count) == (len({v["cid"] for v in inside}), len(inside))
    assert session_count == len(sessions)
    # MySQL divides to 4 decimal places
    expected_bounce = sum(1 for s in sessions if len(s) == 1) / len(sessions)
    assert float(bounce) == pytest.approx(expected_bounce, abs=1e-4)
    expected_duration = sum((s[-1] - s[0]).total_seconds() for s in sessions) / len(sessions)
    assert float(duration) == pytest.approx(expected_duration, abs=1e-3)
    pages = Counter(v["page"] for v in inside)
    expected_documents = sorted(
        (
            [page, None, n, len({v["cid"] for v in inside if v["page"] == page})]
            for page, n in pages.items()
        ),
        key=lambda row: (-row[2], row[0]),
    )
    assert answer["documents"].data == expected_documents
    expected_days = [
        [
            day.isoformat(),
            len({v["cid"] for v in inside if v["datetime"].date() == day}),
            sum(1 for v in inside if v["datetime"].date() == day),
        ]
        for day in (t0, t1)
    ]
    assert answer["visits"].data == expected_days


# ---- settings -------------------------------------------------------------------------------


def test_anonymize_ip_off_keeps_the_full_address(app, site, env, tmp_path):
    log = write(tmp_path / "access.log", [combined("203.0.113.9", T, "/")])
    runner = CliRunner(env={**env, "CRUMBY_ANONYMIZE_IP": "False"})
    result = runner.invoke(cli, ["ingest-log", "--site", "example.org", str(log)])
    assert summary(result.output)["stored"] == 1
    assert stored_visits(app)[0]["ip"] == "203.0.113.9"


def test_geoip_fills_the_place_from_the_full_address(app, site, env, tmp_path):
    city = write_city_database(tmp_path / "city.mmdb")
    log = write(
        tmp_path / "access.log",
        [combined("81.2.69.160", T, "/"), combined("2001:db8:1::abcd", T, "/v6")],
    )
    runner = CliRunner(env={**env, "CRUMBY_GEOIP2_DATABASE_NAME": str(city)})
    result = runner.invoke(cli, ["ingest-log", "--site", "example.org", str(log)])
    assert summary(result.output)["stored"] == 2, result.output
    rows = {row["doc_path"]: row for row in stored_visits(app)}
    assert (rows["/"]["ip"], rows["/"]["country"], rows["/"]["city"]) == (
        "81.2.69.0",
        "GB",
        "London",
    )
    assert (rows["/v6"]["ip"], rows["/v6"]["country"]) == ("2001:db8:1::", "US")


def test_without_secret_key_two_imports_give_a_visitor_one_id(app, site, cli_env, tmp_path):
    """The day's salt is in the database, not a key of each run (nor SECRET_KEY)."""
    for number in (1, 2):
        when = T + dt.timedelta(minutes=number)
        log = write(tmp_path / f"{number}.log", [combined("203.0.113.9", when, f"/{number}")])
        result = CliRunner(env=cli_env).invoke(
            cli, ["ingest-log", "--site", "example.org", str(log)]
        )
        assert result.exit_code == 0 and "SECRET_KEY" not in result.output
        assert summary(result.output)["stored"] == 1
    first, second = stored_visits(app)
    assert first["cid"].startswith("anon-") and second["cid"] == first["cid"]


def test_a_progress_bar_only_on_a_terminal_and_only_for_large_files(tmp_path, monkeypatch):
    big = tmp_path / "big.log"
    big.write_bytes(b"x\n" * (commands.PROGRESS_MIN_BYTES // 2 + 1))
    small = write(tmp_path / "small.log", ["x"])

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, path, shown in (
        (Terminal(), big, True),
        (io.StringIO(), big, False),
        (Terminal(), small, False),
    ):
        monkeypatch.setattr(sys, "stderr", stream)
        source = open_source(str(path))
        try:
            with commands._progress(source) as advance:
                assert (advance is not None) == shown
                if advance is not None:
                    source.stream.read()
                    advance(source.position())
        finally:
            source.close()
        assert ("100%" in stream.getvalue()) == shown


def test_a_version_3_database_gets_the_import_keys_table(database_url, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET})
    ensure_schema(app)
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE import_keys"))
        connection.execute(sa.text("UPDATE crumby_schema SET version = 3"))
    fresh = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET})
    ensure_schema(fresh)
    with fresh.app_context():
        inspector = sa.inspect(db.engine)
        assert "import_keys" in inspector.get_table_names()
        assert inspector.get_pk_constraint("import_keys")["constrained_columns"] == ["line_key"]
        version = db.session.scalar(sa.text("SELECT version FROM crumby_schema"))
        db.session.remove()
        db.engine.dispose()
    assert version == SCHEMA_VERSION
    with app.app_context():
        db.engine.dispose()


# ---- reading beside storing (crumby.imports.forked) -----------------------------------------


def _children() -> set[int]:
    """Live (not yet reaped) processes whose parent is this one."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found


def test_lines_are_read_in_a_second_process_and_stored_in_this_one(app, site, tmp_path):
    lines = [
        combined(f"203.0.113.{n % 40}", T + dt.timedelta(seconds=n), f"/r{n % 9}").encode()
        for n in range(5000)
    ]
    readers = tmp_path / "readers"
    real_read = LineReader.read
    before = _children()  # the suite's own (a browser, servers) are not the reader

    def read(self, raw, source, number):
        with readers.open("a") as out:  # the reader's pid, from whichever process reads
            out.write(f"{os.getpid()}\n")
        return real_read(self, raw, source, number)

    with app.app_context():
        importer = LogImporter(app, db.engine, site=site, batch=400)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(LineReader, "read", read)
            positions: list[int] = []
            forked.import_source(importer, iter(lines), "x", lambda: 42, positions.append)
        done = importer.finish()
    pids = set(readers.read_text().split())
    assert pids and str(os.getpid()) not in pids, "lines are parsed beside the storing process"
    assert done.lines == 5000 and done.stored == 5000
    assert len(stored_visits(app)) == 5000
    assert positions and set(positions) == {42}, "progress comes from the reader's position"
    assert _children() <= before, "the reader has exited and been reaped"


def test_a_database_that_fails_mid_import_stops_the_reader_too(app, site, tmp_path):
    many = (
        combined(f"198.51.100.{n % 90}", T + dt.timedelta(seconds=n), f"/f{n}").encode()
        for n in range(200_000)  # far more than the reader may send ahead
    )
    before = _children()
    with app.app_context():
        importer = LogImporter(app, db.engine, site=site, batch=500)
        calls = []

        def refuse(rows):
            calls.append(len(rows))
            if len(calls) > 2:
                raise StoreFailed("database: gone")
            real_store(rows)

        real_store = importer._store
        importer._store = refuse  # type: ignore[method-assign]
        with pytest.raises(StoreFailed):
            forked.import_source(importer, many, "x", lambda: 0)
    assert _children() <= before, "the reader was stopped and reaped"
    assert len(stored_visits(app)) == 1000, "the two batches stored before the failure stay"


def test_a_reader_that_dies_is_a_read_failure_not_a_hang(app, site):
    def lines():
        yield combined("192.0.2.1", T, "/a").encode()
        os._exit(3)  # the reading process ends without a word

    before = _children()
    with app.app_context():
        importer = LogImporter(app, db.engine, site=site)
        with pytest.raises(forked.ReadStopped, match="stopped unexpectedly"):
            forked.import_source(importer, lines(), "x", lambda: 0)
    assert _children() <= before
