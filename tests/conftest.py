"""Fixtures: one throwaway database per backend, an app, a client and a CLI runner.

``CRUMBY_TEST_DATABASES`` (comma-separated: sqlite, mysql, postgresql) names the
backends to run on; a named backend that cannot be reached fails the run.
Unset, the suite runs on SQLite plus whichever of the others answers.
Server URLs come from ``CRUMBY_TEST_MYSQL_URL`` and ``CRUMBY_TEST_POSTGRESQL_URL``.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from crumby import create_app
from crumby.extensions import db
from crumby.ingest.writer import stop_writer
from crumby.models import (
    ApiToken,
    Event,
    Funnel,
    FunnelStep,
    Goal,
    SessionDay,
    ShareLink,
    Site,
    User,
    Visit,
    VisitorDay,
)

SERVER_URLS = {
    "mysql": os.environ.get("CRUMBY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
    "postgresql": os.environ.get(
        "CRUMBY_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
}
KNOWN = ("sqlite", "mysql", "postgresql")


def _reachable(url: str) -> str | None:
    """None if the server answers, else why not."""
    engine = sa.create_engine(url, connect_args=_connect_timeout(url))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:  # any driver error means: not reachable
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()


def _connect_timeout(url: str) -> dict:
    return {"connect_timeout": 3}


def _selected_backends() -> list[str]:
    wanted = os.environ.get("CRUMBY_TEST_DATABASES", "").strip()
    if wanted:
        names = [n.strip().lower() for n in wanted.split(",") if n.strip()]
        unknown = [n for n in names if n not in KNOWN]
        if unknown:
            raise pytest.UsageError(f"CRUMBY_TEST_DATABASES: unknown backend(s) {unknown}")
        for name in names:
            if name != "sqlite":
                why = _reachable(SERVER_URLS[name])
                if why:
                    raise pytest.UsageError(
                        f"CRUMBY_TEST_DATABASES asks for {name}, which is unreachable: {why}"
                    )
        return names
    return ["sqlite"] + [n for n in ("mysql", "postgresql") if _reachable(SERVER_URLS[n]) is None]


BACKENDS = _selected_backends()


def pytest_report_header(config: pytest.Config) -> str:
    return f"crumby test databases: {', '.join(BACKENDS)}"


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``one_database`` checks what no database changes (a page's own behaviour
    in the browser, the tracker's requests): it runs on the first selected database only."""
    if "database_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "one_database"
    ):
        # as a parametrize mark, which takes precedence over the fixture's own params
        metafunc.definition.add_marker(
            pytest.mark.parametrize("database_url", BACKENDS[:1], indirect=True, scope="session")
        )


def _server_database(backend: str) -> Iterator[str]:
    """Create a uniquely named database on the server and drop it afterwards."""
    admin_url = sa.engine.make_url(SERVER_URLS[backend])
    name = f"crumby_test_{secrets.token_hex(4)}"
    options = {"isolation_level": "AUTOCOMMIT"}
    admin = sa.create_engine(admin_url, **options)
    with admin.connect() as conn:
        if backend == "mysql":
            conn.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        else:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """A fresh, empty database on each selected backend, shared by the session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "crumby.db"
        yield f"sqlite:///{path}"
    else:
        yield from _server_database(request.param)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's own Crumby settings or home folder."""
    for name in list(os.environ):
        if name.startswith("CRUMBY_") and not name.startswith("CRUMBY_TEST_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


def _empty_tables() -> None:
    for model in (
        ApiToken,
        User,
        Event,
        Visit,
        VisitorDay,
        SessionDay,
        FunnelStep,
        Funnel,
        Goal,
        ShareLink,
        Site,
    ):
        db.session.execute(sa.delete(model))
    db.session.commit()


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """A Crumby app on a database whose data tables start empty."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "test-secret",
            "GEOIP2_DATABASE_NAME": str(tmp_path / "no-geoip.mmdb"),
            # the suite sends many hits from 127.0.0.1; tests/test_rate_limit.py tests the limit
            "HIT_RATE_LIMIT": None,
        }
    )
    from crumby.database import ensure_schema

    ensure_schema(app)
    with app.app_context():
        _empty_tables()
    yield app
    stop_writer(app)
    with app.app_context():
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


@pytest.fixture
def other_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database on the same backend, for a test that builds or breaks a schema."""
    backend = sa.engine.make_url(database_url).get_backend_name()
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        yield from _server_database(backend)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, app: Flask) -> dict[str, str]:
    """Environment for the ``crumby`` console script on the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUMBY_")}
    env["CRUMBY_SQLALCHEMY_DATABASE_URI"] = database_url
    env["HOME"] = str(tmp_path / "home")
    return env


@pytest.fixture
def runner(cli_env: dict[str, str]) -> CliRunner:
    """click's runner with the test database in its environment."""
    return CliRunner(env=cli_env)


@pytest.fixture(scope="session")
def crumby_script() -> str:
    """Path of the installed ``crumby`` console script."""
    script = Path(sys.executable).with_name("crumby")
    if not script.exists():
        raise pytest.UsageError(f"console script not installed next to {sys.executable}")
    return str(script)
