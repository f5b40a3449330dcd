"""``crumby sites``, ``addsite``, ``site``, ``delsite``: manage the sites Crumby counts."""

from __future__ import annotations

from contextlib import AbstractContextManager

import click
from sqlalchemy import Connection

from crumby.sites.registry import (
    SiteError,
    add_site,
    all_sites,
    change_site,
    count_rows,
    delete_site,
    find_site,
)


def _transaction() -> AbstractContextManager[Connection]:
    """One transaction on the configured database; SiteError becomes a one-line exit."""
    from crumby.cli import database_transaction

    return database_transaction(SiteError)


@click.command("sites")
def sites_command() -> None:
    """List registered sites: HOST TIMEZONE public|private."""
    with _transaction() as connection:
        for site in all_sites(connection):
            click.echo(site.describe())


@click.command("addsite")
@click.argument("host")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone of its days.")
@click.option("--public", is_flag=True, help="Let anyone see its public reports.")
def addsite_command(host: str, timezone: str, public: bool) -> None:
    """Register the site HOST (example.org; www.example.org counts as the same site)."""
    with _transaction() as connection:
        site = add_site(connection, host, timezone, public)
    click.echo(site.describe())


@click.command("site")
@click.argument("host")
@click.option("--timezone", help="A new IANA zone; stored days follow it at once.")
@click.option("--public/--private", default=None, help="Who may see its public reports.")
def site_command(host: str, timezone: str | None, public: bool | None) -> None:
    """Show or change a site's settings."""
    with _transaction() as connection:
        site = change_site(connection, host, timezone, public)
    click.echo(site.describe())


@click.command("delsite")
@click.argument("host")
@click.option("--yes", is_flag=True, help="Really delete the site and all its data.")
def delsite_command(host: str, yes: bool) -> None:
    """Remove a site and all its visits and events (needs --yes)."""
    with _transaction() as connection:
        if not yes:
            site = find_site(connection, host)
            if site is None:
                raise SiteError(f"no such site: {host}")
            visits, events = count_rows(connection, site)
            raise SiteError(
                f"this would delete {site.host} with {visits} visits and {events} events; "
                "run again with --yes to do it"
            )
        site, visits, events = delete_site(connection, host)
    click.echo(f"deleted {site.host}: {visits} visits, {events} events")


COMMANDS = (sites_command, addsite_command, site_command, delsite_command)
