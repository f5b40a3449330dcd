"""``crumby goal add|list|del`` and ``crumby funnel add|list|del`` (contract section 9)."""

from __future__ import annotations

from contextlib import AbstractContextManager

import click
from sqlalchemy import Connection

from crumby.goals.registry import (
    GoalError,
    add_funnel,
    add_goal,
    delete_funnel,
    delete_goal,
    list_funnels,
    list_goals,
)
from crumby.sites import SiteInfo, find_site


def _transaction() -> AbstractContextManager[Connection]:
    """One transaction on the configured database; GoalError becomes a one-line exit."""
    from crumby.cli import database_transaction

    return database_transaction(GoalError)


def _site(connection: Connection, host: str) -> SiteInfo:
    site = find_site(connection, host)
    if site is None:
        raise GoalError(f"no such site: {host[:253]}")
    return site


@click.group("goal")
def goal_group() -> None:
    """A site's goals: an event name or a page path whose visitors count as conversions."""


@goal_group.command("add")
@click.argument("host")
@click.argument("name")
@click.option("--event", metavar="E", help="The goal is reached by cmb.event(E, ...).")
@click.option("--page", metavar="PATH", help="The goal is reached by a view of PATH.")
def goal_add(host: str, name: str, event: str | None, page: str | None) -> None:
    """Add the goal NAME to the site HOST (give --event or --page)."""
    with _transaction() as connection:
        goal = add_goal(connection, host, name, event=event, page=page)
    click.echo(goal.describe())


@goal_group.command("list")
@click.argument("host")
def goal_list(host: str) -> None:
    """List the site's goals: NAME, event|page, and the event name or path (tab-separated)."""
    with _transaction() as connection:
        for goal in list_goals(connection, _site(connection, host)):
            click.echo(goal.describe())


@goal_group.command("del")
@click.argument("host")
@click.argument("name")
def goal_del(host: str, name: str) -> None:
    """Remove a goal (refused while a funnel uses it)."""
    with _transaction() as connection:
        goal = delete_goal(connection, host, name)
    click.echo(f"deleted goal {goal.name}")


@click.group("funnel")
def funnel_group() -> None:
    """A site's funnels: 2 to 8 of its goals, reached in order within one session."""


@funnel_group.command("add")
@click.argument("host")
@click.argument("name")
@click.argument("goals", nargs=-1)
def funnel_add(host: str, name: str, goals: tuple[str, ...]) -> None:
    """Add the funnel NAME: GOAL1 GOAL2 [... GOAL8], goals of HOST in step order."""
    with _transaction() as connection:
        funnel = add_funnel(connection, host, name, goals)
    click.echo(funnel.describe())


@funnel_group.command("list")
@click.argument("host")
def funnel_list(host: str) -> None:
    """List the site's funnels: NAME, then its goals in order (NAME<TAB>GOAL1 > GOAL2 ...)."""
    with _transaction() as connection:
        for funnel in list_funnels(connection, _site(connection, host)):
            click.echo(funnel.describe())


@funnel_group.command("del")
@click.argument("host")
@click.argument("name")
def funnel_del(host: str, name: str) -> None:
    """Remove a funnel (its goals stay)."""
    with _transaction() as connection:
        funnel = delete_funnel(connection, host, name)
    click.echo(f"deleted funnel {funnel.name}")


COMMANDS = (goal_group, funnel_group)
