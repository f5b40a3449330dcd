"""``crumby ingest-log`` and ``crumby syslog``: server logs in, without JavaScript."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from crumby.imports.forked import ReadStopped, import_source
from crumby.imports.formats import PARSERS
from crumby.imports.importer import LogImporter, StoreFailed, Summary
from crumby.imports.sources import Source, open_source, read_lines
from crumby.sites import SiteInfo, find_site

#: files smaller than this get no progress bar: they are done before it would show
PROGRESS_MIN_BYTES = 1 << 20


@contextmanager
def _importer(site: str | None, fmt: str, scheme: str, **options: Any) -> Iterator[LogImporter]:
    """A LogImporter on the configured database; an unknown ``--site`` is a one-line error."""
    from crumby.cli import database_app
    from crumby.extensions import db

    with database_app() as app:
        engine = db.engine
        found: SiteInfo | None = None
        if site is not None:
            with engine.connect() as connection:
                found = find_site(connection, site)
            if found is None:
                raise click.ClickException(
                    f"no such site: {site} (register it first: crumby addsite {site})"
                )
        yield LogImporter(app, engine, site=found, parser=PARSERS[fmt], scheme=scheme, **options)


SITE_HELP = "Store every line under this registered site (default: each line's host)."
FORMAT_HELP = "combined: Apache/nginx combined; json: one object per line; auto: either."
SCHEME_HELP = "Scheme of the page URLs when a line does not name one."


@click.command("ingest-log")
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option("--site", metavar="HOST", help=SITE_HELP)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "combined", "json"]),
    default="auto",
    show_default=True,
    help=FORMAT_HELP,
)
@click.option("--scheme", type=click.Choice(["https", "http"]), default="https", help=SCHEME_HELP)
def ingest_log_command(files: tuple[str, ...], site: str | None, fmt: str, scheme: str) -> None:
    """Store a visit per page request in web-server access logs.

    FILE is an access log (plain or gzip-compressed) or - for stdin (the
    default). Only successful GET requests of pages by people count: assets,
    other methods, errors, redirects and bots are skipped. Importing the same
    lines again (the same file, or an overlapping rotated one) stores them once.
    """
    if not files:
        if sys.stdin.isatty():
            raise click.UsageError("name a log FILE (or - to read stdin)")
        files = ("-",)
    if files.count("-") > 1:
        raise click.UsageError("stdin (-) can be read only once")
    sources = _open_all(files)
    try:
        with _importer(site, fmt, scheme) as importer:
            failure, storing = _import_all(importer, sources)
            if storing:  # what was read before a damaged file still lands
                try:
                    importer.finish()
                except StoreFailed as exc:
                    failure = str(exc)
            _print_summary(importer.summary)
            if failure is not None:
                raise click.ClickException(
                    f"{failure} (lines stored so far stay stored; importing again skips them)"
                )
    finally:
        for source in sources:
            source.close()


def _open_all(files: tuple[str, ...]) -> list[Source]:
    """Every file opened before anything is stored: a missing one is an error up front."""
    sources: list[Source] = []
    try:
        for path in files:
            try:
                sources.append(open_source(path))
            except OSError as exc:
                raise click.ClickException(f"{path}: {exc.strerror or exc}") from None
    except click.ClickException:
        for source in sources:
            source.close()
        raise
    return sources


def _import_all(importer: LogImporter, sources: list[Source]) -> tuple[str | None, bool]:
    """Read every source into the importer.

    Returns a one-line reason if something failed, and whether the database
    still takes rows (so that what was read is worth storing).
    """
    for source in sources:
        try:
            with _progress(source) as progress:
                lines = read_lines(source.stream)
                import_source(importer, lines, source.name, source.position, progress)
        except StoreFailed as exc:
            return str(exc), False
        except ReadStopped as exc:
            # a damaged or truncated .gz: what came before the damage is imported
            return f"{source.name}: cannot read further: {exc}", True
    return None, True


@contextmanager
def _progress(source: Source) -> Iterator[Any]:
    """A progress bar on stderr for a large file, only when stderr is a terminal."""
    if source.size is None or source.size < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=source.size, label=source.name, file=sys.stderr) as bar:
        done = [0]

        def advance(position: int) -> None:
            bar.update(position - done[0])
            done[0] = position

        yield advance


def _print_summary(summary: Summary) -> None:
    for line in summary.describe():
        click.echo(line)
    if summary.skipped["no_host"]:
        click.echo("(no_host: lines that name no host need --site HOST to say whose they are)")


@click.command("syslog")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=65140, show_default=True, type=click.IntRange(1, 65535))
@click.option("--site", metavar="HOST", help=SITE_HELP)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "combined", "json"]),
    default="auto",
    show_default=True,
    help=FORMAT_HELP,
)
@click.option("--scheme", type=click.Choice(["https", "http"]), default="https", help=SCHEME_HELP)
@click.option(
    "--batch-lines",
    default=500,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Store a batch once it has this many lines...",
)
@click.option(
    "--batch-seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01, 3600),
    help="...or once its first line is this old.",
)
@click.option(
    "--queue-lines",
    default=50_000,
    show_default=True,
    type=click.IntRange(1, 10_000_000),
    help="Lines held while the database is slow; more are dropped (and counted).",
)
@click.option(
    "--stats-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="How often to log the counts (when they changed).",
)
def syslog_command(
    host: str,
    port: int,
    site: str | None,
    fmt: str,
    scheme: str,
    batch_lines: int,
    batch_seconds: float,
    queue_lines: int,
    stats_seconds: float,
) -> None:
    """Receive nginx access-log lines over syslog (UDP) and store them in batches.

    For nginx's access_log syslog:server=HOST:PORT with the JSON log_format of
    README ("Without JavaScript"). SIGTERM or Ctrl-C stops it after storing
    the lines received.
    """
    from crumby.imports.syslog import SyslogListener

    with _importer(site, fmt, scheme, batch=max(batch_lines, 1)) as importer:
        try:
            listener = SyslogListener(
                importer,
                host,
                port,
                batch_lines=batch_lines,
                batch_seconds=batch_seconds,
                queue_lines=queue_lines,
                report=lambda message: click.echo(f"crumby syslog: {message}", err=True),
                stats_seconds=stats_seconds,
            )
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on udp {host}:{port}: {exc.strerror or exc}"
            ) from None
        previous = {
            signum: signal.signal(signum, lambda *_: listener.stop())
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            where = f"{listener.address[0]}:{listener.address[1]}"
            click.echo(f"crumby syslog: listening on udp {where}", err=True)
            listener.serve()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        click.echo(f"crumby syslog: stopped: {listener.status()}", err=True)
        for _source, number, reason in importer.summary.examples:
            click.echo(f"crumby syslog: malformed: datagram {number}: {reason}", err=True)
        if listener.lost:
            raise click.ClickException(
                f"{listener.lost} lines were not stored: the database refused them"
            )


COMMANDS = (ingest_log_command, syslog_command)
