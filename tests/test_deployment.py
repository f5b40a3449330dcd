"""The files in deployment/ really serve Crumby: Apache + mod_wsgi, and gunicorn behind nginx.

Each test starts a private server (Debian's apache2 with libapache2-mod-wsgi-py3,
or nginx in front of gunicorn) as a subprocess on a free loopback port, with
its own config, pid file and logs in a temporary folder, using the committed
config files with only names, paths and ports filled in. Nothing is installed
here; .ci/run installs the Debian packages.
"""

from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import BACKENDS, _server_database

REPO = Path(__file__).resolve().parent.parent
DEPLOYMENT = REPO / "deployment"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
#: as root, servers drop privileges to this user, as they do in production
RUN_USER = "www-data" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
RUN_GROUP = grp.getgrgid(pwd.getpwnam(RUN_USER).pw_gid).gr_name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fill_in(template: Path, replacements: dict[str, str]) -> str:
    """The committed file with placeholders replaced; each one must be present."""
    text = template.read_text()
    for old, new in replacements.items():
        assert old in text, f"{template.name} no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def wait_until_serving(url: str, proc: subprocess.Popen, logs: list[Path]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 1):
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            shown = "\n".join(p.read_text() for p in logs if p.exists())
            raise AssertionError(f"server did not start (exit {proc.poll()}):\n{shown}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the servers' unprivileged users can read (pytest's tmp_path is private)."""
    path = Path(tempfile.mkdtemp(prefix="crumby-deploy-"))
    path.chmod(0o755)
    data = path / "data"
    data.mkdir()
    shutil.chown(data, RUN_USER, RUN_GROUP)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def site_settings(request, shared_dir: Path) -> Iterator[tuple[Path, str]]:
    """A settings file naming a fresh, empty database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{shared_dir / 'data' / 'crumby.db'}"
        yield write_settings(shared_dir, url), url
    else:
        for url in _server_database(request.param):
            yield write_settings(shared_dir, url), url


def write_settings(folder: Path, url: str, extra: str = "") -> Path:
    path = folder / "crumby.cfg"
    path.write_text(
        extra + f"SQLALCHEMY_DATABASE_URI = {url!r}\n"
        "SECRET_KEY = 'deployment-test-secret'\n"
        f"GEOIP2_DATABASE_NAME = {str(folder / 'data' / 'GeoLite2-City.mmdb')!r}\n"
    )
    path.chmod(0o644)
    return path


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def run_cli(cli: list[str], env: dict[str, str], user: str | None, *args: str) -> str:
    """Run ``crumby ARGS`` as the server's user (README: the CLI runs as the daemon's user)."""
    if user is not None and os.geteuid() == 0:
        cli = ["runuser", "-u", user, "--", *cli]
    done = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_serves_crumby(
    base: str, url: str, cli: list[str], env: dict[str, str], user: str | None
) -> None:
    """Pages and JSON errors come from Crumby, on the database the settings file names.

    A fresh install shows the welcome page and has no site; once ``crumby addsite``
    registers one (public), its public reports run through the server.
    """
    if url.startswith("sqlite:"):
        # not even opened here first: the file must be created by the server's user
        assert not Path(url.removeprefix("sqlite:///")).exists()
    else:
        assert "visits" not in table_names(url)
    status, headers, body = get(base + "/")
    assert status == 200, body[:2000]
    assert headers["Content-Type"].startswith("text/html")
    assert b"Welcome to Crumby" in body  # no site yet
    status, headers, body = get(base + "/api/public/no-such-report")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert "error" in json.loads(body)
    status, _, body = get(base + "/api/public/visits?days=7")
    assert status == 404 and "error" in json.loads(body)  # no site to report on
    assert "example.org" in run_cli(cli, env, user, "addsite", "example.org", "--public")
    # a public report runs through the server on that database, for the new site
    status, _, body = get(base + "/api/public/visits?days=7")
    assert status == 200, body[:2000]
    answer = json.loads(body)
    assert answer["site"] == "example.org" and len(answer["data"]) == 7
    status, _, body = get(base + "/")
    assert status == 200 and b'data-site="example.org"' in body  # now its dashboard
    # the first request created the tables in the database the settings file names
    assert {"visits", "events", "users", "calendar"} <= table_names(url)


def assert_api_tokens_reach_crumby(
    base: str, cli: list[str], env: dict[str, str], user: str | None
) -> None:
    """A token made with ``crumby token`` opens the private API through the server."""
    run_cli(cli, env, user, "adduser", "alice", "pw")
    token = run_cli(cli, env, user, "token", "alice").strip().splitlines()[-1]
    status, _, body = get(base + "/api/private")
    assert status == 401 and "error" in json.loads(body)
    status, _, body = get(base + "/api/private", {"Authorization": f"Bearer {token}"})
    assert status == 200, body[:2000]
    assert {q["name"] for q in json.loads(body)["queries"]} >= {"events", "locations", "origins"}


def long_hit(base: str, size: int, tag: str) -> tuple[int, dict[str, str], bytes]:
    """A GET /visit whose query string is ``size`` bytes, its page ``/long-TAG``."""
    prefix = f"dl=https%3A%2F%2Fexample.org%2Flong-{tag}%3Fq%3D"
    query = prefix + "a" * (size - len(prefix))
    assert len(query) == size
    return get(f"{base}/visit?{query}")


def assert_long_get_hits_reach_crumby(base: str, url: str, tag: str) -> None:
    """Contract section 4: a GET hit up to 8 KiB is stored, a longer one gets Crumby's 413 JSON.

    Each server's own request-line limit (gunicorn 4094, Apache 8190, nginx 8k
    buffers) sits below what the contract promises; the committed configs raise it.
    """
    status, headers, body = long_hit(base, 7 * 1024, tag)
    assert status == 200, body[:500]
    assert headers["Content-Type"] == "image/gif"
    status, headers, body = long_hit(base, 8192, tag)
    assert status == 200, body[:500]
    status, headers, body = long_hit(base, 8193, tag)
    assert status == 413, body[:500]
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "query string larger than 8192 bytes"}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT COUNT(*) FROM visits WHERE doc_path = :path"),
                {"path": f"/long-{tag}"},
            ).scalar()
    finally:
        engine.dispose()
    assert stored == 2


def test_crumby_wsgi_exposes_an_application_configured_by_crumby_settings(tmp_path, monkeypatch):
    config = tmp_path / "crumby.cfg"
    config.write_text(
        "DOMAIN = 'stats.example.org'\n"
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{tmp_path / 'wsgi.db'}'\n"
    )
    monkeypatch.setenv("CRUMBY_SETTINGS", str(config))
    application = runpy.run_path(str(DEPLOYMENT / "crumby.wsgi"))["application"]
    assert isinstance(application, Flask)
    assert application.config["DOMAIN"] == "stats.example.org"
    response = application.test_client().get("/api/public")
    assert response.status_code == 200 and response.get_json()["queries"]
    assert (tmp_path / "wsgi.db").exists()


# --- Apache httpd + mod_wsgi ---------------------------------------------------------


def debian_python_venv(folder: Path) -> Path:
    """A virtualenv made by /usr/bin/python3, as README tells Apache users to make one.

    Instead of installing crumby and its dependencies again, it reaches this
    test run's packages through a .pth file (same Python 3.11 ABI).
    """
    venv = folder / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = next(venv.glob("lib/python3*/site-packages"))
    ours = sysconfig.get_paths()["purelib"]
    (site_packages / "crumby-test-packages.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n"
    )
    return venv


def apache_config(folder: Path, port: int, venv: Path) -> Path:
    site = fill_in(
        DEPLOYMENT / "apache" / "crumby.conf",
        {
            "<VirtualHost *:80>": f"<VirtualHost *:{port}>",
            # only root may switch users; an unprivileged Apache runs Crumby as itself
            "user=crumby group=crumby ": (
                f"user={RUN_USER} group={RUN_GROUP} " if os.geteuid() == 0 else ""
            ),
            "python-home=/opt/crumby/venv": f"python-home={venv}",
            "home=/var/lib/crumby": f"home={folder / 'data'}",
            "/opt/crumby/crumby.wsgi": str(DEPLOYMENT / "crumby.wsgi"),
            "<Directory /opt/crumby>": f"<Directory {DEPLOYMENT}>",
        },
    )
    (folder / "site.conf").write_text(site)
    (folder / "logs").mkdir()
    (folder / "run").mkdir()
    (folder / "run").chmod(0o755)
    modules = ["mpm_event", "authz_core", "wsgi"]
    lines = [
        f'ServerRoot "{folder}"',
        "ServerName 127.0.0.1",
        f"Listen 127.0.0.1:{port}",
        f"PidFile {folder / 'run' / 'apache2.pid'}",
        f"DefaultRuntimeDir {folder / 'run'}",
        f"Mutex file:{folder / 'run'} default",
        f"ErrorLog {folder / 'logs' / 'error.log'}",
        "LogLevel info",
        'LogFormat "%h %l %u %t \\"%r\\" %>s %O" combined',
        *(f"LoadModule {m}_module {APACHE_MODULES / f'mod_{m}.so'}" for m in modules),
        f"WSGISocketPrefix {folder / 'run' / 'wsgi'}",
        f"Define APACHE_LOG_DIR {folder / 'logs'}",
    ]
    if os.geteuid() == 0:
        lines += [f"User {RUN_USER}", f"Group {RUN_GROUP}"]
    lines.append(f"Include {folder / 'site.conf'}")
    path = folder / "apache2.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_apache_mod_wsgi_serves_crumby_wsgi(shared_dir, site_settings):
    settings_file, url = site_settings
    port = free_port()
    venv = debian_python_venv(shared_dir)
    config = apache_config(shared_dir, port, venv)
    # what /etc/apache2/envvars does for a Debian Apache: the daemon processes inherit it
    env = {"PATH": os.environ["PATH"], "LANG": "C", "CRUMBY_SETTINGS": str(settings_file)}
    proc = subprocess.Popen(
        ["/usr/sbin/apache2", "-f", str(config), "-DFOREGROUND"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    logs = [shared_dir / "logs" / "error.log", shared_dir / "logs" / "crumby-error.log"]
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", proc, logs)
        try:
            # the CLI runs as the daemon's user, with the daemon's Python, as README
            # tells users to; WSGIPassAuthorization: the Bearer header reaches Crumby
            cli = [str(venv / "bin" / "python"), "-c", "from crumby.cli import main; main()"]
            assert_serves_crumby(f"http://127.0.0.1:{port}", url, cli, env, RUN_USER)
            assert_api_tokens_reach_crumby(f"http://127.0.0.1:{port}", cli, env, RUN_USER)
            assert_long_get_hits_reach_crumby(f"http://127.0.0.1:{port}", url, "apache")
            # past LimitRequestLine (16 KiB) Apache answers itself, before Crumby
            status, _, _ = long_hit(f"http://127.0.0.1:{port}", 17 * 1024, "apache")
            assert status == 414
        except AssertionError:
            print("\n".join(p.read_text() for p in logs if p.exists()))
            raise
        # the app ran in mod_wsgi's daemon process, under Debian's Python, as RUN_USER
        error_log = (shared_dir / "logs" / "error.log").read_text()
        assert "mod_wsgi" in error_log and "Python/3.11" in error_log
        assert (shared_dir / "logs" / "crumby-access.log").read_text().count('"GET / ') == 2
    finally:
        stop(proc)
    assert proc.returncode == 0


# --- gunicorn (systemd unit) behind nginx ------------------------------------------------


def unit_command(port: int) -> tuple[list[str], dict[str, str]]:
    """ExecStart and Environment from crumby.service, pointed at this test run."""
    argv: list[str] = []
    env: dict[str, str] = {}
    for line in (DEPLOYMENT / "systemd" / "crumby.service").read_text().splitlines():
        if line.startswith("ExecStart="):
            argv = shlex.split(line.removeprefix("ExecStart="))
        elif line.startswith("Environment="):
            name, _, value = line.removeprefix("Environment=").partition("=")
            env[name] = value
    assert argv[0] == "/opt/crumby/venv/bin/gunicorn"
    argv[0] = str(Path(sys.executable).with_name("gunicorn"))
    bind = argv.index("--bind")
    assert argv[bind + 1] == "127.0.0.1:8000"
    argv[bind + 1] = f"127.0.0.1:{port}"
    return argv, env


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    unit = tmp_path / "crumby.service"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    unit.write_text(
        fill_in(
            DEPLOYMENT / "systemd" / "crumby.service",
            {"/opt/crumby/venv/bin/gunicorn": str(gunicorn)},
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
    complaints = [line for line in result.stderr.splitlines() if "crumby.service" in line]
    assert complaints == []


def nginx_config(folder: Path, port: int, upstream: int) -> Path:
    site = fill_in(
        DEPLOYMENT / "nginx" / "crumby.conf",
        {
            "listen 80;": f"listen 127.0.0.1:{port};",
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream};",
        },
    )
    (folder / "nginx-site.conf").write_text(site)
    temp = folder / "nginx-temp"
    temp.mkdir()
    lines = [
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
        f"  include {folder / 'nginx-site.conf'};",
        "}",
    ]
    path = folder / "nginx.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_visitor_address_comes_through_nginx(port: int, url: str) -> None:
    """With PROXY_COUNT = 1 (README), a hit stores the address nginx saw, not a forged one."""
    # the visitor connects from 127.0.0.2 (nginx listens on 127.0.0.1) and forges the header
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=30, source_address=("127.0.0.2", 0)
    )
    try:
        connection.request(
            "POST",
            "/visit",
            body="dl=https%3A%2F%2Fexample.org%2Fdeployed",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-For": "81.2.69.1",
            },
        )
        assert connection.getresponse().status == 204
    finally:
        connection.close()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT ip FROM visits WHERE doc_uri LIKE '%/deployed'")
            ).all()
    finally:
        engine.dispose()
    assert [row[0] for row in rows] == ["127.0.0.2"]


def test_gunicorn_from_the_systemd_unit_behind_nginx(shared_dir, site_settings):
    settings_file, url = site_settings
    app_port, web_port = free_port(), free_port()
    argv, unit_env = unit_command(app_port)
    assert unit_env["CRUMBY_SETTINGS"] == "/etc/crumby/crumby.cfg"
    # as README says for nginx: trust the one hop nginx adds to X-Forwarded-For
    # and keep whole addresses, so the stored one tells exactly who connected
    settings_file.write_text(settings_file.read_text() + "PROXY_COUNT = 1\nANONYMIZE_IP = False\n")
    # Type=notify: systemd waits for gunicorn's READY=1 on this socket
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = shared_dir / "notify.sock"
    notify.bind(str(notify_path))
    notify.settimeout(60)
    env = {
        "PATH": os.environ["PATH"],
        "CRUMBY_SETTINGS": str(settings_file),
        "NOTIFY_SOCKET": str(notify_path),
    }
    gunicorn = subprocess.Popen(
        argv, env=env, cwd=shared_dir / "data", stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    nginx = None
    try:
        assert b"READY=1" in notify.recv(4096)
        config = nginx_config(shared_dir, web_port, app_port)
        nginx = subprocess.Popen(
            ["/usr/sbin/nginx", "-c", str(config), "-p", str(shared_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        wait_until_serving(f"http://127.0.0.1:{web_port}", nginx, [shared_dir / "nginx-error.log"])
        cli = [str(Path(sys.executable).with_name("crumby"))]
        assert_serves_crumby(f"http://127.0.0.1:{web_port}", url, cli, env, None)
        assert_api_tokens_reach_crumby(f"http://127.0.0.1:{web_port}", cli, env, None)
        assert_visitor_address_comes_through_nginx(web_port, url)
        # the unit's gunicorn alone, and behind nginx
        assert_long_get_hits_reach_crumby(f"http://127.0.0.1:{app_port}", url, "gunicorn")
        assert_long_get_hits_reach_crumby(f"http://127.0.0.1:{web_port}", url, "nginx")
        # past nginx's 16k buffers, nginx answers itself, with a JSON 413 like Crumby's
        status, headers, body = long_hit(f"http://127.0.0.1:{web_port}", 17 * 1024, "nginx")
        assert status == 413 and headers["Content-Type"] == "application/json"
        assert "error" in json.loads(body)
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert '"GET / HTTP/1.1" 200' in (shared_dir / "nginx-access.log").read_text()
    finally:
        notify.close()
        if nginx is not None:
            stop(nginx, signal.SIGQUIT)
        stop(gunicorn)
    assert gunicorn.returncode == 0


def test_the_prune_timer_and_service_pass_systemd_analyze_verify(tmp_path):
    """crumby-prune.timer starts crumby-prune.service daily; it runs `crumby prune` as Crumby."""
    crumby = Path(sys.executable).with_name("crumby")
    service = fill_in(
        DEPLOYMENT / "systemd" / "crumby-prune.service",
        {"ExecStart=/opt/crumby/venv/bin/crumby prune": f"ExecStart={crumby} prune"},
    )
    (tmp_path / "crumby-prune.service").write_text(service)
    timer = (DEPLOYMENT / "systemd" / "crumby-prune.timer").read_text()
    (tmp_path / "crumby-prune.timer").write_text(timer)
    result = subprocess.run(
        ["systemd-analyze", "verify", "crumby-prune.timer", "crumby-prune.service"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "crumby-prune" in line] == []
    main = (DEPLOYMENT / "systemd" / "crumby.service").read_text().splitlines()
    for shared in ("User=", "Group=", "Environment=CRUMBY_SETTINGS=", "ReadWritePaths="):
        assert [line for line in service.splitlines() if line.startswith(shared)] == [
            line for line in main if line.startswith(shared)
        ]
    assert "OnCalendar=*-*-* 03:17:00" in timer and "Persistent=true" in timer
