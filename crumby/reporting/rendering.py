"""Turning a query file into SQL text plus bound parameters.

The templates get their own ``ImmutableSandboxedEnvironment`` (not Flask's
HTML environment): no attribute tricks, no access to the app, no autoescaping
of SQL. Jinja only shapes the SQL; the range travels as bind parameters
``:t0``, ``:t1``, ``:t1_next`` and ``:now``. ``{{ t0 }}``/``{{ t1 }}`` render
the already validated date strings for authors who prefer them inline.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crumby.reporting import dialects

#: the same rule SQLAlchemy's text() uses to find ``:name`` parameters
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
PARAMETERS = ("t0", "t1", "t1_next", "now")


@dataclass(frozen=True)
class Rendered:
    """SQL text and the values of the parameters it uses."""

    sql: str
    params: dict[str, dt.datetime]


def environment() -> ImmutableSandboxedEnvironment:
    """A fresh sandbox; StrictUndefined makes a misspelt helper fail instead of rendering ''."""
    return ImmutableSandboxedEnvironment(
        autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True
    )


def context(dialect: str, t0: dt.date, t1: dt.date) -> dict[str, Any]:
    """What a template sees: the range as strings, the dialect and its helpers."""
    return {
        "t0": t0.isoformat(),
        "t1": t1.isoformat(),
        "t1_next": (t1 + dt.timedelta(days=1)).isoformat(),
        "dialect": dialect,
        **dialects.helpers(dialect),
    }


def strip_leading_comments(sql: str) -> str:
    """Drop the metadata block: a ``-- order:10`` line would read as a ``:10`` parameter."""
    lines = sql.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines)


def render(source: str, dialect: str, t0: dt.date, t1: dt.date, now: dt.datetime) -> Rendered:
    """Render a query template; raises jinja2 errors or DialectError on a broken file."""
    env = environment()
    text = env.from_string(source).render(context(dialect, t0, t1))
    sql = strip_leading_comments(text).rstrip().rstrip(";").strip()
    midnight = dt.time()
    values = {
        "t0": dt.datetime.combine(t0, midnight),
        "t1": dt.datetime.combine(t1, midnight),
        "t1_next": dt.datetime.combine(t1 + dt.timedelta(days=1), midnight),
        "now": now,
    }
    used = set(_BIND.findall(sql))
    return Rendered(sql=sql, params={k: v for k, v in values.items() if k in used})
