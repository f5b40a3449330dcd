"""``crumby query`` and ``crumby check``: run reports from the terminal."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import click

from crumby import clock
from crumby.extensions import db
from crumby.reporting import parameters
from crumby.reporting.csvout import to_csv
from crumby.reporting.discovery import SCOPES, get_query, list_queries
from crumby.reporting.filters import NAMES as FILTER_NAMES
from crumby.reporting.filters import FilterError, parse_filters
from crumby.reporting.ranges import RangeError, parse_range, today
from crumby.reporting.reports import QueryError, run_query
from crumby.reporting.sitechoice import SiteChoiceError, choose_site
from crumby.sites import SiteInfo, all_sites


def _table(columns: list[str], data: list[list[Any]]) -> str:
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in r] for r in data]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@click.command("query")
@click.argument("name")
@click.option("--days", help="The N days up to and including --to (default today).")
@click.option("--from", "from_", metavar="YYYY-MM-DD", help="First day (needs --to).")
@click.option("--to", metavar="YYYY-MM-DD", help="Last day (default today).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--private", is_flag=True, help="Run the private query of that name.")
@click.option("--site", "site_host", metavar="HOST", help="The site (needed with several).")
@click.option("--sql", "show_sql", is_flag=True, help="Print the rendered SQL first (to stderr).")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter the report takes, such as funnel=NAME for the funnel report.",
)
@click.option(
    "--filter",
    "filter_args",
    multiple=True,
    metavar="NAME=VALUE",
    help=f"Narrow the report, as the API's filters do ({', '.join(FILTER_NAMES)}); repeatable.",
)
def query_command(
    name: str,
    days: str | None,
    from_: str | None,
    to: str | None,
    fmt: str,
    private: bool,
    site_host: str | None,
    show_sql: bool,
    params: tuple[str, ...],
    filter_args: tuple[str, ...],
) -> None:
    """Run the report NAME for a range and print its result (default: last 30 days)."""
    from crumby.cli import database_app

    args = {k: v for k, v in (("days", days), ("from", from_), ("to", to)) if v is not None}
    given = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.ClickException(f"--param takes NAME=VALUE, got {item!r}")
        given[key] = value
    pairs = [arg.partition("=") for arg in filter_args]
    bad = [name for name, sep, _value in pairs if not sep or name not in FILTER_NAMES]
    if bad:
        raise click.ClickException(
            f"--filter takes NAME=VALUE with NAME one of {', '.join(FILTER_NAMES)}: {bad[0]!r}"
        )
    try:
        from werkzeug.datastructures import MultiDict

        filters = parse_filters(MultiDict([(name, value) for name, _sep, value in pairs]))
    except FilterError as exc:
        raise click.ClickException(str(exc)) from None
    scope = "private" if private else "public"
    with database_app():
        try:
            site = choose_site({"site": site_host} if site_host else {})
        except SiteChoiceError as exc:
            message = str(exc).replace("the site parameter (?site=HOST)", "--site HOST")
            raise click.ClickException(message) from None
        try:
            t0, t1 = parse_range(args, now=today(site.timezone, clock.now()))
        except RangeError as exc:
            # the range rules speak of request parameters; name the options instead
            raise click.ClickException(re.sub(r"\b(from|to|days)\b", r"--\1", str(exc))) from None
        query = get_query(scope, name)
        if query is None:
            raise click.ClickException(f"no such {scope} query: {name}")
        try:
            bound = parameters.resolve(query, site, given, days=(t1 - t0).days + 1)
            result = run_query(query, site, t0, t1, filters, use_cache=False, params=bound)
        except (QueryError, parameters.ParameterError) as exc:
            message = str(exc).replace("funnel=NAME", "--param funnel=NAME")
            raise click.ClickException(message) from None
        if show_sql:
            click.echo(result.sql, err=True)
        if fmt == "json":
            payload = {
                "name": query.name,
                "title": query.title,
                "chart": result.chart,
                "columns": result.columns,
                "data": result.data,
                "site": site.host,
                "t0": t0.isoformat(),
                "t1": t1.isoformat(),
                "filters": filters.as_dict(),
            }
            click.echo(json.dumps(payload, indent=2))
        elif fmt == "csv":
            click.echo(to_csv(result.columns, result.data), nl=False)
        else:
            click.echo(_table(result.columns, result.data))


@click.command("check")
def check_command() -> None:
    """Render and run every query against the configured database; list the broken ones."""
    from crumby.cli import database_app

    broken = 0
    with database_app():
        with db.engine.connect() as connection:
            sites = all_sites(connection)
        # the first site's last week, or an empty one: every file must render and run
        site = sites[0] if sites else SiteInfo(id=0, host="example.invalid")
        last = today(site.timezone, clock.now())
        for scope in SCOPES:
            for query in list_queries(scope):
                try:
                    # a query's own parameters (funnel=...) get values that match nothing
                    result = run_query(
                        query,
                        site,
                        last - dt.timedelta(days=6),
                        last,
                        use_cache=False,
                        params=parameters.examples(query),
                    )
                except (QueryError, parameters.ParameterError) as exc:
                    broken += 1
                    click.echo(f"FAIL {exc}", err=True)
                else:
                    click.echo(
                        f"ok   {query.key} ({len(result.columns)} columns, {len(result.data)} rows)"
                    )
    if broken:
        raise click.ClickException(f"{broken} broken quer{'y' if broken == 1 else 'ies'}")
