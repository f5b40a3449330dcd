"""Turning a query file into SQL text plus bound parameters.

The templates get their own ``ImmutableSandboxedEnvironment`` (not Flask's
HTML environment): no attribute tricks, no access to the app, no autoescaping
of SQL. Jinja only shapes the SQL; the site and the range travel as bind
parameters (``:site_id``, ``:t0``, ``:t1``, ``:t1_next``, ``:d0``, ``:d1``,
``:now``, and ``:f_<name>`` for the active filters, which ``{{ filters("v") }}``
renders as conditions: ``crumby.reporting.filters``). ``{{ t0 }}``/``{{ t1 }}``
render the already validated local date strings for authors who prefer them inline.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crumby.reporting import dialects
from crumby.reporting.aggregates import VisitorRows
from crumby.reporting.filters import FilterHelper, Filters
from crumby.sites import localtime
from crumby.sites.info import SiteInfo
from crumby.store import spec_for

#: the same rule SQLAlchemy's text() uses to find ``:name`` parameters
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
#: the parameters every query may use (the local-time helpers add ``tz_1``, ``tz_2``, ...)
PARAMETERS = ("t0", "t1", "t1_next", "now", "d0", "d1", "site_id")
#: local-time helpers see this much beyond the range (sessions are read a day past its end)
MARGIN = dt.timedelta(days=2)


@dataclass(frozen=True)
class Bound:
    """A query parameter resolved for a site (``crumby.reporting.parameters``).

    ``context`` is what the template sees under the parameter's name, ``binds``
    the bound values its SQL may use, ``value`` the request's value (for cache
    keys and the answer).
    """

    value: str
    context: Any
    binds: Mapping[str, Any]


@dataclass(frozen=True)
class Rendered:
    """SQL text and the values of the parameters it uses."""

    sql: str
    params: dict[str, Any]
    #: whether the template called the ``filters`` helper (else it ignores the filters)
    filtered: bool = False


def environment() -> ImmutableSandboxedEnvironment:
    """A fresh sandbox; StrictUndefined makes a misspelt helper fail instead of rendering ''."""
    return ImmutableSandboxedEnvironment(
        autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True
    )


def strip_leading_comments(sql: str) -> str:
    """Drop the metadata block: a ``-- order:10`` line would read as a ``:10`` parameter."""
    lines = sql.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines)


def render(
    source: str,
    dialect: str,
    site: SiteInfo,
    t0: dt.date,
    t1: dt.date,
    now: dt.datetime,
    filters: Filters | None = None,
    parameters: Mapping[str, Bound] | None = None,
) -> Rendered:
    """Render a query template for a site and its local days t0..t1 (inclusive).

    ``:t0``, ``:t1`` and ``:t1_next`` are the UTC instants at which the local
    days t0, t1 and the day after t1 begin, for comparing with stored
    datetimes; ``:d0`` and ``:d1`` are the local dates themselves (midnight),
    for the ``calendar`` table; ``:site_id`` is the site's id; ``:f_<name>``
    the value of each active filter. ``parameters`` (the query's own, such as
    ``funnel``) add their context and binds. Raises jinja2 errors or
    DialectError on a broken file.
    """
    filters = filters or Filters()
    zone = site.timezone
    start = localtime.local_midnight_utc(zone, t0)
    end = localtime.local_midnight_utc(zone, t1 + dt.timedelta(days=1))
    values: dict[str, Any] = {
        "t0": start,
        "t1": localtime.local_midnight_utc(zone, t1),
        "t1_next": end,
        "now": now,
        "d0": dt.datetime.combine(t0, dt.time()),
        "d1": dt.datetime.combine(t1, dt.time()),
        "site_id": site.id,
        **filters.bind_values(),
    }
    helper = FilterHelper(filters, spec_for(dialect).equals)
    for bound in (parameters or {}).values():
        values.update(bound.binds)
    window = (min(start, now) - MARGIN, max(end, now) + MARGIN)
    context = {
        "t0": t0.isoformat(),
        "t1": t1.isoformat(),
        "t1_next": (t1 + dt.timedelta(days=1)).isoformat(),
        "site": site.host,
        "timezone": zone,
        "filters": helper,
        "visitor_rows": VisitorRows(helper),
        "dialect": dialect,
        **dialects.helpers(dialect, zone, *window, values),
        "hours": lambda: dialects.hour_rows(zone, start, end, values),
        **{name: bound.context for name, bound in (parameters or {}).items()},
    }
    text = environment().from_string(source).render(context)
    sql = strip_leading_comments(text).rstrip().rstrip(";").strip()
    used = set(_BIND.findall(sql))
    return Rendered(
        sql=sql, params={k: v for k, v in values.items() if k in used}, filtered=helper.used
    )
