"""Request parameters a query file asks for, such as the ``funnel`` report's ``funnel=NAME``.

A query names them in its metadata (``-- parameters: funnel``). Each known
parameter has a resolver that checks the request's value against the site
(an unknown funnel is 404, a missing or unusable value 400) and turns it into
what the template sees under the parameter's name plus bound values: the
value itself never reaches the SQL text. ``example`` gives a value that
matches nothing, so that ``crumby check`` can render and run such a query on
any site.

``funnel`` gives the template ``funnel.name`` and ``funnel.steps``, one per
step in order, each with ``step`` (1, 2, ...), ``kind`` ('event' or 'page'),
and ``goal`` and ``target``: the names of the bound parameters
(``:funnel_goal_1``, ``:funnel_target_1``) that hold the goal's name and its
event name or page path. The bound ``:funnel`` holds the funnel's name.

``interval`` (optional, default ``day``) is the time series' bucket: ``hour``,
``day``, ``week`` or ``month`` of the site's local time; the template sees
the word itself. ``hour`` is limited to ranges of MAX_HOUR_DAYS days, so that
a series stays a few hundred points (the ``hours()`` helper lists them).

``versions`` (optional, default ``off``) asks a breakdown for its rows split
by version as well (``on``): the browsers report lists "Chrome 131" and
"Chrome 130" apart. The template sees ``True`` or ``False``; the dashboard
offers it as a choice on the card, so versions are there on demand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from crumby.extensions import db
from crumby.reporting.discovery import Query
from crumby.reporting.rendering import Bound
from crumby.sites import SiteInfo

#: the longest value any parameter accepts (longer is 400, like every request value)
MAX_LENGTH = 1000


#: the buckets a time series may ask for, and the longest range hourly buckets serve
INTERVALS = ("hour", "day", "week", "month")
MAX_HOUR_DAYS = 7


class ParameterError(Exception):
    """A query's parameter is missing, malformed (400) or names nothing of the site (404)."""

    def __init__(self, status: int, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        #: the request parameter at fault, for the JSON error's ``parameter``
        self.parameter = parameter


@dataclass(frozen=True)
class Parameter:
    """How to resolve one kind of parameter: from a request value, and as a harmless example."""

    resolve: Callable[[Connection, SiteInfo, str, int], Bound]
    example: Callable[[], Bound]
    #: the values a site offers, for the dashboard's choice (a funnel's names); None: the
    #: dashboard draws its own control (the chart's interval)
    choices: Callable[[Connection, SiteInfo], list[str]] | None
    #: what the 400 for a missing value tells the caller
    hint: str
    #: the value when the request gives none (None: the parameter is required)
    default: str | None = None


def _funnel_bound(name: str, steps: list[tuple[str, str, str]]) -> Bound:
    binds: dict[str, object] = {"funnel": name}
    context_steps = []
    for n, (goal, kind, target) in enumerate(steps, start=1):
        binds[f"funnel_goal_{n}"] = goal
        binds[f"funnel_target_{n}"] = target
        context_steps.append(
            {
                "step": n,
                "kind": kind,
                "goal": f":funnel_goal_{n}",
                "target": f":funnel_target_{n}",
            }
        )
    return Bound(value=name, context={"name": name, "steps": context_steps}, binds=binds)


def _resolve_funnel(connection: Connection, site: SiteInfo, value: str, days: int) -> Bound:
    from crumby.goals import find_funnel

    funnel = find_funnel(connection, site, value)
    if funnel is None:
        raise ParameterError(404, f"{site.host} has no funnel named {value[:100]!r}")
    return _funnel_bound(
        funnel.name, [(goal.name, goal.kind, goal.target) for goal in funnel.steps]
    )


def _example_funnel() -> Bound:
    # one step of each kind, matching nothing: every branch of a funnel query renders and runs
    return _funnel_bound("", [("", "page", ""), ("", "event", "")])


def _funnel_names(connection: Connection, site: SiteInfo) -> list[str]:
    from crumby.goals import list_funnels

    return [funnel.name for funnel in list_funnels(connection, site)]


def _resolve_interval(connection: Connection, site: SiteInfo, value: str, days: int) -> Bound:
    if value not in INTERVALS:
        raise ParameterError(
            400, f"interval must be one of {', '.join(INTERVALS)}", parameter="interval"
        )
    if value == "hour" and days > MAX_HOUR_DAYS:
        raise ParameterError(
            400,
            f"interval=hour serves ranges of at most {MAX_HOUR_DAYS} days; "
            f"this one has {days}: use day, week or month",
            parameter="interval",
        )
    return Bound(value=value, context=value, binds={})


def _example_interval() -> Bound:
    return Bound(value="day", context="day", binds={})


#: the values of ``versions``: the first is the default
VERSIONS = ("off", "on")


def _resolve_versions(connection: Connection, site: SiteInfo, value: str, days: int) -> Bound:
    if value not in VERSIONS:
        raise ParameterError(
            400, f"versions must be one of {', '.join(VERSIONS)}", parameter="versions"
        )
    return Bound(value=value, context=value == "on", binds={})


PARAMETERS: dict[str, Parameter] = {
    "funnel": Parameter(
        _resolve_funnel, _example_funnel, _funnel_names, "funnel=NAME (crumby funnel list HOST)"
    ),
    "interval": Parameter(
        _resolve_interval,
        _example_interval,
        None,
        f"interval={'|'.join(INTERVALS)} (default day; hour for at most {MAX_HOUR_DAYS} days)",
        default="day",
    ),
    "versions": Parameter(
        _resolve_versions,
        lambda: _resolve_versions(None, None, VERSIONS[0], 0),  # type: ignore[arg-type]
        lambda connection, site: list(VERSIONS),
        f"versions={'|'.join(VERSIONS)} (default off)",
        default="off",
    ),
}


def declared(query: Query) -> tuple[str, ...]:
    """The parameters a query file names in its ``parameters`` metadata, in order."""
    raw = query.meta.get("parameters", "")
    return tuple(name for name in raw.replace(",", " ").split() if name)


def resolve(
    query: Query, site: SiteInfo, args: Mapping[str, str], days: int = 1
) -> dict[str, Bound]:
    """The query's parameters from a request's values for a range of ``days`` days;
    ParameterError for a bad or missing one."""
    names = declared(query)
    if not names:
        return {}
    found = {}
    with db.engine.connect() as connection:
        for name in names:
            parameter = _known(query, name)
            value = args.get(name)
            if value is None and parameter.default is not None:
                value = parameter.default
            if value is None or not value.strip():
                raise ParameterError(
                    400, f"the {query.name} report needs {parameter.hint}", parameter=name
                )
            if len(value) > MAX_LENGTH:
                raise ParameterError(
                    400, f"{name} is too long: at most {MAX_LENGTH} characters", parameter=name
                )
            found[name] = parameter.resolve(connection, site, value, days)
    return found


def defaults(query: Query) -> dict[str, Bound]:
    """The query's optional parameters at their defaults (a caller that gives none of them)."""
    return {
        name: _known(query, name).example()
        for name in declared(query)
        if _known(query, name).default is not None
    }


def choices(query: Query, site: SiteInfo) -> dict[str, list[str]]:
    """Each parameter of the query with the values the site offers for it (maybe none)."""
    names = declared(query)
    if not names:
        return {}
    offered = {}
    with db.engine.connect() as connection:
        for name in names:
            choice = _known(query, name).choices
            if choice is not None:
                offered[name] = choice(connection, site)
    return offered


def examples(query: Query) -> dict[str, Bound]:
    """Values for every parameter of the query that match nothing (for checks and samples)."""
    return {name: _known(query, name).example() for name in declared(query)}


def _known(query: Query, name: str) -> Parameter:
    try:
        return PARAMETERS[name]
    except KeyError:
        known = ", ".join(PARAMETERS)
        raise ParameterError(
            500, f"{query.key} asks for an unknown parameter {name!r} (known: {known})"
        ) from None
