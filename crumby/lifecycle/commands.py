"""``crumby prune``, ``forget``, ``export``, ``rebuild``: the data lifecycle, command line."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy import Connection

from crumby import clock
from crumby.lifecycle import deletion, export
from crumby.reporting.ranges import RangeError, parse_date
from crumby.sites import SiteInfo, all_sites, find_site, localtime


class OneLineCommand(click.Command):
    """A command whose usage errors (unknown options, bad values) are one line, as all errors.

    click prints the usage and a hint around them; contract section 3 wants
    one clear line on stderr and a non-zero exit.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise click.ClickException(exc.format_message()) from None


@contextmanager
def _connection() -> Iterator[tuple[Any, Connection]]:
    """The configured app and a connection to its database; errors become one line."""
    from crumby.cli import database_app
    from crumby.extensions import db

    with database_app() as app:
        with db.engine.connect() as connection:
            yield app, connection


def retention_days(config: Any) -> int:
    """RETENTION_DAYS as a number of days, or a one-line error saying what is missing."""
    days = config.get("RETENTION_DAYS")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise click.ClickException(f"RETENTION_DAYS must be a whole number of days, not {days!r}")
    if days == 0:
        raise click.ClickException(
            "no retention period: give --days N or set RETENTION_DAYS (0 keeps everything)"
        )
    return days


@click.command("prune", cls=OneLineCommand)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    help="Delete rows older than this many days (default: RETENTION_DAYS).",
)
def prune_command(days: int | None) -> None:
    """Delete visits and events older than N days, on every site."""
    with _connection() as (app, connection):
        days = days if days is not None else retention_days(app.config)
        before = clock.now(app) - dt.timedelta(days=days)
        done = deletion.prune(connection, before)
    click.echo(
        f"deleted {done.visits} visits, {done.events} events "
        f"older than {export.iso(before.replace(microsecond=0))} "
        f"({days} day{'' if days == 1 else 's'})"
    )


@click.command("forget", cls=OneLineCommand)
@click.argument("cid")
def forget_command(cid: str) -> None:
    """Delete every visit and event of visitor id CID, on every site."""
    if not cid.strip():
        raise click.ClickException("forget needs a visitor id (the cid of the rows)")
    with _connection() as (_app, connection):
        done = deletion.forget(connection, cid)
        connection.commit()
    click.echo(f"deleted {done.visits} visits, {done.events} events of visitor {cid}")


@click.command("export", cls=OneLineCommand)
@click.option("--site", "site_host", metavar="HOST", help="Only this site's rows.")
@click.option("--cid", help="Only this visitor's rows.")
@click.option(
    "--from",
    "from_",
    metavar="YYYY-MM-DD",
    help="From this day on: the site's local day with --site, else the UTC day.",
)
@click.option("--to", metavar="YYYY-MM-DD", help="Up to and including this day.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="jsonl: visits and events, one JSON object per line; csv: one table.",
)
@click.option(
    "--table",
    type=click.Choice(["visits", "events"]),
    help="Only this table (csv: default visits).",
)
def export_command(
    site_host: str | None,
    cid: str | None,
    from_: str | None,
    to: str | None,
    fmt: str,
    table: str | None,
) -> None:
    """Write stored visits and events to stdout, all or narrowed by the options."""
    first, last = _dates(from_, to)
    out = sys.stdout
    with _connection() as (_app, connection):
        site = None
        if site_host is not None:
            site = find_site(connection, site_host)
            if site is None:
                raise click.ClickException(f"no such site: {site_host}")
        start, end = _span(site, first, last)
        selection = export.Selection(
            site_id=site.id if site else None, cid=cid, start=start, end=end
        )
        try:
            if fmt == "csv":
                export.write_csv(connection, table or "visits", selection, out)
            else:
                names = [table] if table else ["visits", "events"]
                export.write_jsonl(connection, names, selection, out)
            out.flush()
        except BrokenPipeError:  # `crumby export | head`: the reader has all it wants
            _silence_stdout()
            sys.exit(1)


def _dates(from_: str | None, to: str | None) -> tuple[dt.date | None, dt.date | None]:
    """--from and --to as dates, or a one-line error."""
    try:
        first = parse_date("--from", from_) if from_ is not None else None
        last = parse_date("--to", to) if to is not None else None
    except RangeError as exc:
        raise click.ClickException(str(exc)) from None
    if first is not None and last is not None and first > last:
        raise click.ClickException(f"--from {first} is after --to {last}")
    return first, last


def _span(
    site: SiteInfo | None, first: dt.date | None, last: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The UTC instants of the start of ``first`` and the end of ``last``.

    Days are the site's local days when a site is given, else UTC days.
    """

    def midnight(day: dt.date) -> dt.datetime:
        if site is None:
            return dt.datetime.combine(day, dt.time())
        return localtime.local_midnight_utc(site.timezone, day)

    start = midnight(first) if first is not None else None
    end = midnight(last + dt.timedelta(days=1)) if last is not None else None
    return start, end


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit flush raises nothing more."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@click.command("rebuild", cls=OneLineCommand)
@click.option("--site", "site_host", metavar="HOST", help="Only this site (default: every site).")
def rebuild_command(site_host: str | None) -> None:
    """Rebuild the derived tables (visitor and session days) from the stored views.

    The ingest pipeline, deletions and zone changes keep them right; this is
    for a database restored in part, or rows changed by hand. Each local day
    is its own transaction: the site's hits wait for one day at most.
    """
    from crumby.ingest import rollups

    with _connection() as (_app, connection):
        if site_host is not None:
            site = find_site(connection, site_host)
            if site is None:
                raise click.ClickException(f"no such site: {site_host}")
            sites = [site]
        else:
            sites = all_sites(connection)
        for site in sites:
            span = rollups.view_days(connection, site.id, site.timezone)
            days = (span[1] - span[0]).days + 1 if span else 1
            with click.progressbar(length=days, label=site.host, file=sys.stderr) as bar:

                def advanced(day: dt.date, _views: int, bar: Any = bar, span: Any = span) -> None:
                    bar.update((day - span[0]).days + 1 - bar.pos)

                views = rollups.rebuild(
                    connection, site.id, site.timezone, progress=advanced, commit=True
                )
            click.echo(f"{site.host}: {views} views counted into the rollups")
    if not sites:
        click.echo("no sites")


COMMANDS = (prune_command, forget_command, export_command, rebuild_command)
