"""The ``crumby`` command line: set up, inspect and run Crumby.

Every failure is a ``click.ClickException``: one line on stderr, exit status 1,
never a traceback.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any, TextIO

import click
from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from crumby import __version__, accounts, settings
from crumby.database import DatabaseError, describe, ensure_schema

if TYPE_CHECKING:
    from crumby import geoupdate as geoupdate_types

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def build_app() -> Flask:
    """The app as configured by the environment, or a one-line error."""
    from crumby import create_app

    try:
        return create_app()
    except settings.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"database driver missing: {exc.name} (pip install 'crumby[mysql]' or "
            "'crumby[postgresql]')"
        ) from None
    except SQLAlchemyError as exc:
        raise click.ClickException(f"database: {describe(exc)}") from None


@contextmanager
def database_app() -> Iterator[Flask]:
    """An app context with the schema in place; database errors become one line."""
    app = build_app()
    with app.app_context():
        try:
            ensure_schema(app)
            yield app
        except DatabaseError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(f"database: {describe(exc)}") from None
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None


@contextmanager
def database_transaction(*errors: type[Exception]) -> Iterator[Connection]:
    """One transaction on the configured database; the given errors become a one-line exit.

    For the commands that change registries (sites, goals, funnels): an
    error raised inside rolls everything back. A unique name taken by someone
    else between the command's check and its insert says so.
    """
    from crumby.extensions import db

    with database_app():
        try:
            with db.engine.begin() as connection:
                yield connection
        except errors as exc:
            raise click.ClickException(str(exc)) from None
        except IntegrityError:
            raise click.ClickException("that name was just taken; list and try again") from None


def _no_traceback(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a stray OSError into one line, as every error should be."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}") from None

    return wrapper


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="crumby")
def cli() -> None:
    """Crumby: self-hosted web analytics.

    Configure with a settings file named by CRUMBY_SETTINGS (see `crumby init`)
    and CRUMBY_<KEY> environment variables.
    """


@cli.command()
@click.argument("path", default="crumby.cfg", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@_no_traceback
def init(path: str, force: bool) -> None:
    """Write a commented settings file with a fresh SECRET_KEY."""
    if os.path.exists(path) and not force:
        raise click.ClickException(f"{path} already exists; use --force to overwrite it")
    content = settings.render_config_file(secrets.token_hex(32))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600)  # it holds a secret: owner-only
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)
    os.chmod(path, 0o600)
    absolute = os.path.abspath(path)
    click.echo(f"Wrote {absolute}")
    click.echo("Point Crumby at it with:")
    click.echo(f"  export {settings.SETTINGS_ENV}={absolute}")


@cli.command("env")
def env_command() -> None:
    """Print the effective configuration, secrets masked."""
    app = build_app()
    keys = list(settings.DEFAULTS)
    extra = sorted(k for k in app.config if k not in settings.DEFAULTS and k in _user_keys())
    for key in keys + extra:
        click.echo(f"{key} = {settings.mask(key, app.config.get(key))!r}")


def _user_keys() -> set[str]:
    """Keys the user set in the settings file or the environment."""
    found = set(settings.load_env(os.environ))
    path = os.environ.get(settings.SETTINGS_ENV)
    if path:
        found |= set(settings.load_file(path))
    return found


@cli.command()
def users() -> None:
    """List usernames, one per line."""
    with database_app():
        for name in accounts.list_usernames():
            click.echo(name)


@cli.command()
@click.argument("name")
@click.argument("password", required=False)
def adduser(name: str, password: str | None) -> None:
    """Add a user; without PASSWORD, prompt for it twice."""
    with database_app():
        accounts.validate_username(name)
        if accounts.find_user(name.strip()) is not None:
            raise click.ClickException(f"user {name.strip()!r} already exists")
        if password is None:
            password = click.prompt(
                "Password",
                hide_input=True,
                confirmation_prompt=True,
                default="",
                show_default=False,
            )
        accounts.add_user(name, password)
        click.echo(f"Added user {name.strip()}")


@cli.command()
@click.argument("name")
def deluser(name: str) -> None:
    """Remove a user and their API tokens."""
    with database_app():
        accounts.delete_user(name)
        click.echo(f"Deleted user {name}")


@cli.command()
@click.argument("name")
@click.option("--site", "site", metavar="HOST", help="Limit the token to this site.")
@click.option(
    "--ingest-only",
    is_flag=True,
    help="The token may send events (POST /api/events) but not read reports.",
)
def token(name: str, site: str | None, ingest_only: bool) -> None:
    """Create an API token for user NAME; it is printed once, on the last line."""
    with database_app():
        value = accounts.create_token(name, site=site, ingest_only=ingest_only)
        limits = ""
        if site is not None:
            limits += f", for site {_site_name(site)} only"
        if ingest_only:
            limits += ", ingest-only (sends events, reads no reports)"
        click.echo(
            f"New API token for {name}{limits} (shown once; send it as 'Authorization: Bearer'):"
        )
        click.echo(value)


def _site_name(host: str) -> str:
    """A host as stored (``www.`` folded), for messages."""
    from crumby.sites import SiteError, normalize_host

    try:
        return normalize_host(host)
    except SiteError:
        return host


@cli.command()
@click.option(
    "--license-key",
    envvar="MAXMIND_LICENSE_KEY",
    show_envvar=True,
    help="MaxMind license key: download GeoLite2 City instead of DB-IP City Lite.",
)
@click.option(
    "--account-id",
    envvar="MAXMIND_ACCOUNT_ID",
    show_envvar=True,
    help="MaxMind account id: use MaxMind's newer authenticated download URL.",
)
@click.option("--source", metavar="URL_OR_FILE", help="Take the database from here instead.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to put it (default: GEOIP2_DATABASE_NAME).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the server to answer or send more data.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when it works.")
def geoip(
    license_key: str | None,
    account_id: str | None,
    source: str | None,
    output: str | None,
    timeout: float,
    quiet: bool,
) -> None:
    """Download the latest city database to GEOIP2_DATABASE_NAME, atomically.

    The default source is DB-IP City Lite (free, CC BY 4.0). With a MaxMind
    license key it is MaxMind GeoLite2 City; --source takes a URL or a file
    (.mmdb, .mmdb.gz or .tar.gz). The old file stays in place unless the new
    one opens as a city database.
    """
    from crumby import geoupdate

    try:
        config = settings.resolve()
    except settings.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    target = output or config.get("GEOIP2_DATABASE_NAME")
    if not target or not isinstance(target, str | os.PathLike):
        raise click.ClickException("GEOIP2_DATABASE_NAME is not set: name a file with --output")
    target = os.path.expanduser(target)
    try:
        origin = geoupdate.choose_source(source, license_key, account_id, config)
    except geoupdate.GeoUpdateError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        with _terminate_as_interrupt():
            installed = geoupdate.update(
                target, origin, timeout=timeout, progress=_progress_bar(sys.stderr)
            )
    except geoupdate.GeoUpdateError as exc:
        raise click.ClickException(origin.mask(str(exc))) from None
    if not quiet:
        click.echo(
            f"Installed {installed.database_type} built {installed.build_date} "
            f"({installed.size / 1e6:.1f} MB) from {installed.origin} at {installed.path}"
        )


def _progress_bar(stream: TextIO) -> geoupdate_types.ProgressFactory | None:
    """click's progress bar on a terminal; nothing at all otherwise (cron, pipes, logs)."""
    if not stream.isatty():
        return None

    def factory(total: int | None, label: str) -> Any:
        if total:
            return click.progressbar(length=total, label=label, file=stream)
        return _ByteCounter(label, stream)  # no Content-Length: count what arrives

    return factory


class _ByteCounter:
    """A progress display for a download of unknown size: megabytes so far."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label, self.stream, self.received = label, stream, 0

    def __enter__(self) -> _ByteCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        click.echo(file=self.stream)

    def update(self, n_steps: int) -> None:
        """Add ``n_steps`` bytes and redraw the line."""
        self.received += n_steps
        click.echo(f"\r{self.label}  {self.received / 1e6:.1f} MB", nl=False, file=self.stream)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so temporary files are cleaned up on the way out."""
    import signal

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupted)
    except ValueError:  # not the main thread (an embedding caller): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
def run(host: str, port: int) -> None:
    """Serve Crumby with the development server."""
    with database_app() as app:
        pass
    app.run(host=host, port=port, debug=app.debug, use_reloader=False)


@cli.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--database",
    "path",
    default="~/crumby-demo.db",
    show_default=True,
    help="The demo's own SQLite file (never your real database).",
)
@click.option("--reset", is_flag=True, help="Throw away the demo data and generate it afresh.")
@_no_traceback
def demo_command(host: str, port: int, path: str, reset: bool) -> None:
    """Serve Crumby on a demo database with 90 days of synthetic traffic and a demo site."""
    from crumby import demo

    app = demo.demo_app(path, host=host, port=port)
    with app.app_context():
        try:
            ensure_schema(app)
            visits, events = demo.prepare(reset=reset)
        except DatabaseError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(f"demo database: {describe(exc)}") from None
    click.echo(f"Demo database {demo.expand(path)}: {visits} visits, {events} events")
    click.echo(f"Dashboard: http://{host}:{port}/   demo site: http://{host}:{port}/demo/")
    click.echo(f"Log in as {demo.DEMO_USER!r} with password {demo.DEMO_PASSWORD!r}")
    app.run(host=host, port=port, debug=False, use_reloader=False)


from crumby.goals.commands import COMMANDS as GOAL_COMMANDS  # noqa: E402
from crumby.imports.commands import COMMANDS as IMPORT_COMMANDS  # noqa: E402
from crumby.lifecycle.commands import COMMANDS as LIFECYCLE_COMMANDS  # noqa: E402
from crumby.reporting.commands import check_command, query_command  # noqa: E402
from crumby.sites.commands import COMMANDS as SITE_COMMANDS  # noqa: E402

cli.add_command(query_command)
cli.add_command(check_command)
for _command in (*SITE_COMMANDS, *GOAL_COMMANDS, *IMPORT_COMMANDS):
    cli.add_command(_command)
for _command in LIFECYCLE_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="crumby")
