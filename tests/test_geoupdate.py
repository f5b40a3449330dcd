"""``crumby geoip``: a site owner keeps the city database fresh, and a bad download
never costs them the one they have.

Every download comes from a real HTTP server on 127.0.0.1 (tests/fake_downloads.py);
the databases are small ones built by tests/mmdb_factory.py.
"""

from __future__ import annotations

import datetime as dt
import os
import pty
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import geoip2.database
import pytest
from click.testing import CliRunner

from crumby import geoupdate
from crumby.cli import cli
from tests import fake_downloads as fake
from tests.mmdb_factory import PLACES, write_city_database

PARIS = {
    "continent": "EU",
    "country": "FR",
    "subdivision_1": "Ile-de-France",
    "subdivision_2": None,
    "city": "Paris",
    "latitude": 48.8566,
    "longitude": 2.3522,
    "accuracy_radius": 20,
    "time_zone": "Europe/Paris",
}
#: the "new" database knows Paris; the "old" one on disk does not
NEW_PLACES = {**PLACES, "90.0.0.0/16": PARIS}
LICENSE_KEY = "Zx81-licence-KEY-7781"


@pytest.fixture(autouse=True)
def no_maxmind_environment(monkeypatch):
    """The developer's own MaxMind credentials never reach these tests."""
    for name in ("MAXMIND_LICENSE_KEY", "MAXMIND_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Any attempt to resolve or reach a non-loopback host fails the test instead."""
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if host not in (None, "127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in (
            "127.0.0.1",
            "::1",
        ):
            raise AssertionError(f"a test tried to connect to {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def server():
    with fake.running() as running:
        yield running


@pytest.fixture
def new_db(tmp_path) -> bytes:
    return write_city_database(tmp_path / "new.mmdb", NEW_PLACES).read_bytes()


@pytest.fixture
def site(tmp_path) -> Path:
    """The site's folder with its current (old) database in it."""
    folder = tmp_path / "geo"
    folder.mkdir()
    write_city_database(folder / "GeoLite2-City.mmdb", PLACES)
    return folder


def city_of(path: Path, ip: str) -> str | None:
    with geoip2.database.Reader(str(path)) as reader:
        try:
            return reader.city(ip).city.name
        except geoip2.errors.AddressNotFoundError:
            return None


def geoip(site: Path, *args: str, **env: str):
    """Run ``crumby geoip`` through click's runner with the site's database as target."""
    environ = {"CRUMBY_GEOIP2_DATABASE_NAME": str(site / "GeoLite2-City.mmdb"), **env}
    return CliRunner().invoke(cli, ["geoip", *args], env=environ)


def assert_old_database_kept(site: Path, old: bytes) -> None:
    assert (site / "GeoLite2-City.mmdb").read_bytes() == old
    assert fake.folder_listing(site) == ["GeoLite2-City.mmdb"], "temporary files left behind"


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# --- the default source: DB-IP City Lite ------------------------------------------------


#: "today" for the downloads below: DB-IP names its file by month, so the tests pin the day
TODAY = dt.date(2026, 11, 2)


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    monkeypatch.setattr(geoupdate, "utc_today", lambda: TODAY)


def test_default_downloads_this_months_dbip_city_lite(site, server, new_db):
    month = "2026-11"
    server.serve(f"/free/dbip-city-lite-{month}.mmdb.gz", fake.gzipped(new_db))
    template = server.url("/free/dbip-city-lite-{month}.mmdb.gz")
    assert city_of(site / "GeoLite2-City.mmdb", "90.0.1.1") is None

    result = geoip(site, CRUMBY_GEOIP_DBIP_URL=template)

    assert result.exit_code == 0, result.output
    assert (site / "GeoLite2-City.mmdb").read_bytes() == new_db
    assert city_of(site / "GeoLite2-City.mmdb", "90.0.1.1") == "Paris"
    assert server.paths() == [f"/free/dbip-city-lite-{month}.mmdb.gz"]
    assert "Installed GeoLite2-City" in result.output
    assert fake.folder_listing(site) == ["GeoLite2-City.mmdb"]


def test_dbip_months_are_this_month_then_the_previous_one():
    assert geoupdate.dbip_months(dt.date(2026, 11, 23)) == ["2026-11", "2026-10"]
    assert geoupdate.dbip_months(dt.date(2027, 1, 1)) == ["2027-01", "2026-12"]


def test_the_real_download_urls():
    """What Crumby asks the real services for (never fetched in tests)."""
    dbip = geoupdate.dbip_source(today=dt.date(2026, 11, 2))
    assert dbip.urls == [
        "https://download.db-ip.com/free/dbip-city-lite-2026-11.mmdb.gz",
        "https://download.db-ip.com/free/dbip-city-lite-2026-10.mmdb.gz",
    ]
    legacy = geoupdate.maxmind_source("k3y/+=")
    assert legacy.urls == [
        "https://download.maxmind.com/app/geoip_download"
        "?edition_id=GeoLite2-City&license_key=k3y%2F%2B%3D&suffix=tar.gz"
    ]
    assert legacy.mask(legacy.urls[0]).count("****") == 1 and "k3y" not in legacy.mask(
        legacy.urls[0]
    )
    modern = geoupdate.maxmind_source("k3y", account_id="42")
    assert modern.urls == [
        "https://download.maxmind.com/geoip/databases/GeoLite2-City/download?suffix=tar.gz"
    ]
    assert modern.headers == {"Authorization": "Basic NDI6azN5"}  # base64 of "42:k3y"


def test_early_in_the_month_it_falls_back_to_last_months_file(site, server, new_db):
    this, previous = "2026-11", "2026-10"
    server.serve(f"/dbip-city-lite-{previous}.mmdb.gz", fake.gzipped(new_db))

    result = geoip(site, CRUMBY_GEOIP_DBIP_URL=server.url("/dbip-city-lite-{month}.mmdb.gz"))

    assert result.exit_code == 0, result.output
    assert server.paths() == [
        f"/dbip-city-lite-{this}.mmdb.gz",
        f"/dbip-city-lite-{previous}.mmdb.gz",
    ]
    assert city_of(site / "GeoLite2-City.mmdb", "90.0.1.1") == "Paris"


def test_no_dbip_file_for_either_month_is_one_line_and_keeps_the_old_file(site, server):
    old = (site / "GeoLite2-City.mmdb").read_bytes()

    result = geoip(site, CRUMBY_GEOIP_DBIP_URL=server.url("/dbip-city-lite-{month}.mmdb.gz"))

    assert result.exit_code == 1
    line = one_line(result.output)
    assert "HTTP 404" in line and line.count("404") == 2
    assert_old_database_kept(site, old)


def test_a_missing_folder_is_created(tmp_path, server, new_db):
    url = server.serve("/db.mmdb", new_db)
    target = tmp_path / "var" / "lib" / "crumby" / "city.mmdb"

    result = CliRunner().invoke(cli, ["geoip", "--source", url, "--output", str(target)])

    assert result.exit_code == 0, result.output
    assert target.read_bytes() == new_db
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_the_replacement_keeps_the_old_files_permissions(site, server, new_db):
    target = site / "GeoLite2-City.mmdb"
    target.chmod(0o640)
    result = geoip(site, "--source", server.serve("/db.mmdb", new_db))
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == new_db
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_symlinked_setting_updates_the_file_it_points_to(site, tmp_path, server, new_db):
    link = tmp_path / "etc-link.mmdb"
    link.symlink_to(site / "GeoLite2-City.mmdb")
    result = CliRunner().invoke(
        cli,
        ["geoip", "--source", server.serve("/db.mmdb", new_db)],
        env={"CRUMBY_GEOIP2_DATABASE_NAME": str(link)},
    )
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert (site / "GeoLite2-City.mmdb").read_bytes() == new_db
    assert fake.folder_listing(site) == ["GeoLite2-City.mmdb"]


# --- MaxMind GeoLite2 with a license key ------------------------------------------------


@pytest.fixture
def maxmind(server, new_db) -> fake.FakeMaxMind:
    archive = fake.tarball(
        {
            "COPYRIGHT.txt": b"Database and Contents Copyright (c) MaxMind, Inc.\n",
            "LICENSE.txt": b"Use of this MaxMind product is governed by ...\n",
            "GeoLite2-City.mmdb": new_db,
        }
    )
    endpoint = fake.FakeMaxMind(archive, LICENSE_KEY)
    endpoint.install(server)
    return endpoint


def test_license_key_downloads_geolite2_city_and_never_shows_the_key(site, server, maxmind):
    result = geoip(site, "--license-key", LICENSE_KEY, CRUMBY_GEOIP_MAXMIND_URL=server.url(""))

    assert result.exit_code == 0, result.output
    assert city_of(site / "GeoLite2-City.mmdb", "90.0.1.1") == "Paris"
    assert LICENSE_KEY not in result.output
    assert "****" in result.output  # the URL it names has the key masked
    first, second = server.paths()
    assert first.startswith("/app/geoip_download?") and f"license_key={LICENSE_KEY}" in first
    assert second == maxmind.storage_path  # it followed MaxMind's redirect


def test_license_key_from_the_environment(site, server, maxmind):
    result = geoip(site, MAXMIND_LICENSE_KEY=LICENSE_KEY, CRUMBY_GEOIP_MAXMIND_URL=server.url("/"))
    assert result.exit_code == 0, result.output
    assert city_of(site / "GeoLite2-City.mmdb", "90.0.1.1") == "Paris"


def test_license_key_from_the_settings_file(site, server, maxmind, tmp_path):
    config = tmp_path / "crumby.cfg"
    config.write_text(
        f"MAXMIND_LICENSE_KEY = {LICENSE_KEY!r}\nGEOIP_MAXMIND_URL = {server.url('')!r}\n"
    )
    result = geoip(site, CRUMBY_SETTINGS=str(config))
    assert result.exit_code == 0, result.output
    assert city_of(site / "GeoLite2-City.mmdb", "90.0.1.1") == "Paris"
    shown = CliRunner().invoke(cli, ["env"], env={"CRUMBY_SETTINGS": str(config)})
    assert "MAXMIND_LICENSE_KEY = '********'" in shown.output
    assert LICENSE_KEY not in shown.output


def test_account_id_uses_basic_auth_and_does_not_leak_it_to_the_redirect(site, server, maxmind):
    result = geoip(
        site,
        "--license-key",
        LICENSE_KEY,
        "--account-id",
        maxmind.account_id,
        CRUMBY_GEOIP_MAXMIND_URL=server.url(""),
    )

    assert result.exit_code == 0, result.output
    assert server.paths()[0] == "/geoip/databases/GeoLite2-City/download?suffix=tar.gz"
    assert server.seen[0].headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in maxmind.storage_headers[0]
    assert city_of(site / "GeoLite2-City.mmdb", "90.0.1.1") == "Paris"


@pytest.mark.parametrize("account", [None, "123456"])
def test_a_refused_license_key_is_one_masked_line(site, server, maxmind, account):
    old = (site / "GeoLite2-City.mmdb").read_bytes()
    wrong = "wrong-KEY-4417"
    args = ["--license-key", wrong] + (["--account-id", account] if account else [])
    maxmind.license_key = LICENSE_KEY

    result = geoip(site, *args, CRUMBY_GEOIP_MAXMIND_URL=server.url(""))

    assert result.exit_code == 1
    line = one_line(result.output)
    assert "HTTP 401" in line and "license key" in line
    assert wrong not in result.output
    assert_old_database_kept(site, old)


# --- --source: a URL or a file, in any of the three shapes -------------------------------


def shapes(db: bytes) -> dict[str, bytes]:
    return {
        "mmdb": db,
        "mmdb.gz": fake.gzipped(db),
        "tar.gz": fake.tarball({"README.txt": b"hello\n", "dbip-city-lite.mmdb": db}),
        "tar": fake.tarball({"GeoLite2-City.mmdb": db}, compression=""),
    }


@pytest.mark.parametrize("shape", ["mmdb", "mmdb.gz", "tar.gz", "tar"])
@pytest.mark.parametrize("named", ["honestly", "misleadingly", "without an extension"])
def test_source_url_in_every_shape_is_recognised_by_content(site, server, new_db, shape, named):
    body = shapes(new_db)[shape]
    path = {
        "honestly": f"/city.{shape}",
        "misleadingly": "/city.mmdb" if shape != "mmdb" else "/city.tar.gz",
        "without an extension": "/download?id=7",
    }[named]
    url = server.serve(path, body, Content_Type="application/octet-stream")

    result = geoip(site, "--source", url)

    assert result.exit_code == 0, result.output
    assert (site / "GeoLite2-City.mmdb").read_bytes() == new_db
    assert fake.folder_listing(site) == ["GeoLite2-City.mmdb"]


@pytest.mark.parametrize("shape", ["mmdb", "mmdb.gz", "tar.gz"])
def test_source_file_in_every_shape(site, tmp_path, new_db, shape):
    given = tmp_path / f"download.{shape}"
    given.write_bytes(shapes(new_db)[shape])

    result = geoip(site, "--source", str(given))

    assert result.exit_code == 0, result.output
    assert (site / "GeoLite2-City.mmdb").read_bytes() == new_db
    assert given.read_bytes() == shapes(new_db)[shape], "the given file is left alone"


def test_source_file_url(site, tmp_path, new_db):
    given = tmp_path / "city.mmdb.gz"
    given.write_bytes(fake.gzipped(new_db))
    result = geoip(site, "--source", given.as_uri())
    assert result.exit_code == 0, result.output
    assert city_of(site / "GeoLite2-City.mmdb", "90.0.1.1") == "Paris"


def test_an_archive_with_several_databases_gives_the_city_one(site, server, new_db, tmp_path):
    country = write_city_database(tmp_path / "c.mmdb", PLACES, database_type="GeoLite2-Country")
    archive = fake.tarball(
        {"GeoLite2-Country.mmdb": country.read_bytes(), "GeoLite2-City.mmdb": new_db}
    )
    result = geoip(site, "--source", server.serve("/both.tar.gz", archive))
    assert result.exit_code == 0, result.output
    assert (site / "GeoLite2-City.mmdb").read_bytes() == new_db


# --- failures: one line, non-zero, the old file untouched, no litter ----------------------


def broken_downloads(db: bytes, tmp: Path) -> dict[str, tuple[fake.Route, str]]:
    """name -> (how the server answers, what the one-line error must say)."""
    country = write_city_database(tmp / "country.mmdb", PLACES, database_type="GeoLite2-Country")
    good_gz = fake.gzipped(db)
    good_tgz = fake.tarball({"GeoLite2-City.mmdb": db})
    return {
        "not found": (lambda h: h.send_body(b"<h1>Not Found</h1>", status=404), "HTTP 404"),
        "unauthorized": (lambda h: h.send_body(b"no", status=401), "HTTP 401"),
        "server error": (lambda h: h.send_body(b"oops", status=500), "HTTP 500"),
        "an HTML page": (
            lambda h: h.send_body(b"<!doctype html><title>Login</title>", Content_Type="text/html"),
            "not a MaxMind-format database",
        ),
        "an empty file": (lambda h: h.send_body(b""), "not a MaxMind-format database"),
        "a truncated database": (
            lambda h: h.send_body(db[: len(db) // 2]),
            "not a MaxMind-format database",
        ),
        "corrupt gzip": (
            lambda h: h.send_body(good_gz[:12] + b"\x00garbage" * 40),
            "corrupt gzip data",
        ),
        "truncated gzip": (lambda h: h.send_body(good_gz[: len(good_gz) - 30]), "corrupt gzip"),
        "corrupt tar.gz": (
            lambda h: h.send_body(good_tgz[: len(good_tgz) * 2 // 3]),
            "corrupt",
        ),
        "a tar without a database": (
            lambda h: h.send_body(fake.tarball({"LICENSE.txt": b"CC BY 4.0\n"})),
            "no .mmdb file",
        ),
        "a country database": (
            lambda h: h.send_body(country.read_bytes()),
            "GeoLite2-Country database, not a city database",
        ),
        "a dropped connection": (fake.drop_halfway(good_gz), "connection closed after"),
        "a reset connection": (fake.reset_halfway(good_gz), "reset"),
        "a cut chunked answer": (fake.chunked_then_cut(good_gz), "connection closed mid-download"),
        "a server that is not HTTP": (fake.not_http, "bad HTTP answer"),
    }


BROKEN = [
    "not found",
    "unauthorized",
    "server error",
    "an HTML page",
    "an empty file",
    "a truncated database",
    "corrupt gzip",
    "truncated gzip",
    "corrupt tar.gz",
    "a tar without a database",
    "a country database",
    "a dropped connection",
    "a reset connection",
    "a cut chunked answer",
    "a server that is not HTTP",
]


@pytest.mark.parametrize("case", BROKEN)
def test_a_bad_download_keeps_the_old_database(site, server, new_db, tmp_path, case):
    old = (site / "GeoLite2-City.mmdb").read_bytes()
    route, message = broken_downloads(new_db, tmp_path)[case]
    server.routes["/city.mmdb.gz"] = route

    result = geoip(site, "--source", server.url("/city.mmdb.gz"))

    assert result.exit_code == 1, result.output
    assert message in one_line(result.output)
    assert_old_database_kept(site, old)
    assert city_of(site / "GeoLite2-City.mmdb", "81.2.69.1") == "London"


def test_connection_refused(site):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    old = (site / "GeoLite2-City.mmdb").read_bytes()

    result = geoip(site, "--source", f"http://127.0.0.1:{port}/city.mmdb")

    assert result.exit_code == 1
    assert "Connection refused" in one_line(result.output)
    assert_old_database_kept(site, old)


@pytest.mark.parametrize("after_bytes", [0, 100], ids=["before answering", "mid-body"])
def test_a_server_that_goes_quiet_times_out(site, server, new_db, after_bytes):
    old = (site / "GeoLite2-City.mmdb").read_bytes()
    server.routes["/slow.mmdb"] = fake.stall(5, new_db, after_bytes)

    result = geoip(site, "--source", server.url("/slow.mmdb"), "--timeout", "0.5")

    assert result.exit_code == 1
    # without the timeout the server's hang-up after 5 s would be the error instead
    assert "timed out after 0.5 s" in one_line(result.output)
    assert_old_database_kept(site, old)


@pytest.mark.parametrize("url", ["http://", "http://[::1/city.mmdb", "gopher://127.0.0.1/x"])
def test_an_unusable_source_url(site, url):
    old = (site / "GeoLite2-City.mmdb").read_bytes()
    result = geoip(site, "--source", url)
    assert result.exit_code == 1
    one_line(result.output)
    assert_old_database_kept(site, old)


def test_no_target_at_all_is_one_line(tmp_path, server, new_db):
    config = tmp_path / "crumby.cfg"
    config.write_text("GEOIP2_DATABASE_NAME = None\n")
    url = server.serve("/db.mmdb", new_db)
    result = CliRunner().invoke(
        cli, ["geoip", "--source", url], env={"CRUMBY_SETTINGS": str(config)}
    )
    assert result.exit_code == 1
    assert "--output" in one_line(result.output)
    assert server.paths() == []


def test_a_missing_source_file(site, tmp_path):
    result = geoip(site, "--source", str(tmp_path / "nowhere.mmdb"))
    assert result.exit_code == 1
    assert "nowhere.mmdb: no such file" in one_line(result.output)


def test_a_target_folder_that_is_a_file(tmp_path, server, new_db):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = CliRunner().invoke(
        cli,
        ["geoip", "--source", server.serve("/db.mmdb", new_db)],
        env={"CRUMBY_GEOIP2_DATABASE_NAME": str(blocker / "city.mmdb")},
    )
    assert result.exit_code == 1
    assert "cannot create folder" in one_line(result.output)
    assert server.paths() == [], "nothing is downloaded when it cannot be stored"


def test_an_unwritable_target_folder(server, new_db):
    base = Path(tempfile.mkdtemp(prefix="crumby-geoip-"))
    try:
        base.chmod(0o755)
        folder = base / "geo"
        folder.mkdir()
        write_city_database(folder / "GeoLite2-City.mmdb", PLACES)
        old = (folder / "GeoLite2-City.mmdb").read_bytes()
        folder.chmod(0o555)
        url = server.serve("/db.mmdb", new_db)
        # root ignores file modes, so as root the command runs as "nobody"
        as_root = os.geteuid() == 0
        if as_root:
            os.seteuid(65534)
        try:
            result = geoip(folder, "--source", url)
        finally:
            if as_root:
                os.seteuid(0)
        assert result.exit_code == 1
        line = one_line(result.output)
        assert "cannot write to folder" in line and "Permission denied" in line
        assert_old_database_kept(folder, old)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=True)
        subprocess.run(["rm", "-rf", str(base)], check=True)


# --- the real console script ------------------------------------------------------------


def script_env(site: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRUMBY_", "MAXMIND_")) or k.startswith("CRUMBY_TEST_")
    }
    env["CRUMBY_GEOIP2_DATABASE_NAME"] = str(site / "GeoLite2-City.mmdb")
    env.update(extra)
    return env


def test_console_script_installs_a_database_quietly_off_a_terminal(
    crumby_script, site, server, new_db
):
    url = server.serve("/city.tar.gz", fake.tarball({"GeoLite2-City.mmdb": new_db}))
    result = subprocess.run(
        [crumby_script, "geoip", "--source", url],
        env=script_env(site),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar into a pipe
    assert one_line(result.stdout).startswith("Installed GeoLite2-City")
    assert city_of(site / "GeoLite2-City.mmdb", "90.0.1.1") == "Paris"

    quiet = subprocess.run(
        [crumby_script, "geoip", "--source", url, "--quiet"],
        env=script_env(site),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_console_script_license_key_refused(crumby_script, site, server, maxmind):
    old = (site / "GeoLite2-City.mmdb").read_bytes()
    env = script_env(
        site, MAXMIND_LICENSE_KEY="not-the-key-9", CRUMBY_GEOIP_MAXMIND_URL=server.url("")
    )
    result = subprocess.run(
        [crumby_script, "geoip"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "HTTP 401" in one_line(result.stderr)
    assert "not-the-key-9" not in result.stderr + result.stdout
    assert_old_database_kept(site, old)


def terminal_output(crumby_script: str, site: Path, url: str) -> str:
    """Run the console script with stderr on a pseudo-terminal; what the terminal showed."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [crumby_script, "geoip", "--source", url],
            env=script_env(site, COLUMNS="100"),
            stdout=subprocess.PIPE,
            stderr=terminal,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(timeout=60) == 0
        assert proc.stdout is not None and b"Installed" in proc.stdout.read()
    finally:
        os.close(controller)
    return shown.decode()


def test_console_script_counts_megabytes_when_the_size_is_unknown(
    crumby_script, site, server, new_db
):
    server.routes["/city.mmdb"] = fake.chunked(new_db)
    text = terminal_output(crumby_script, site, server.url("/city.mmdb"))
    assert "Downloading" in text and " MB" in text
    assert (site / "GeoLite2-City.mmdb").read_bytes() == new_db


def test_console_script_shows_a_progress_bar_on_a_terminal(crumby_script, site, server, new_db):
    url = server.serve("/city.mmdb.gz", fake.gzipped(new_db))
    text = terminal_output(crumby_script, site, url)
    assert "Downloading" in text and "100%" in text and "#" in text


def test_console_script_interrupted_by_sigterm_leaves_no_trace(crumby_script, site, server, new_db):
    old = (site / "GeoLite2-City.mmdb").read_bytes()
    big = new_db + b"\x00" * 200_000
    server.routes["/slow.mmdb"] = fake.stall(30, big, after_bytes=150_000)
    proc = subprocess.Popen(
        [crumby_script, "geoip", "--source", server.url("/slow.mmdb")],
        env=script_env(site),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        # wait until the partial download is on disk, then stop the command
        while not any(name.endswith(".part") for name in fake.folder_listing(site)):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert_old_database_kept(site, old)


def test_help_names_the_sources(crumby_script):
    result = subprocess.run(
        [crumby_script, "geoip", "-h"],
        env=dict(os.environ, MAXMIND_LICENSE_KEY="hidden-key-555"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for option in ("--license-key", "--account-id", "--source", "--output", "--timeout"):
        assert option in result.stdout
    assert "hidden-key-555" not in result.stdout
