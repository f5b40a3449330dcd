"""SQL that differs between SQLite, MySQL/MariaDB and PostgreSQL, in one place.

Query templates call these helpers (``{{ day("v.datetime") }}``) instead of
writing one dialect's date functions, so one .sql file runs on all three.
A small mapping was chosen over a transpiler such as sqlglot: the differences
Crumby's reports need are a handful of date expressions, the helpers produce
SQL an author can read in ``crumby query --format`` logs, and a transpiler
would re-parse every author's SQL (with its own dialect quirks and bugs)
on every request. An unknown dialect fails loudly instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: helper arguments are SQL expressions written by the query author, never request values;
#: still, refuse a statement separator so that a slip fails early and clearly
_EXPRESSION = re.compile(r"^[^;]{1,1000}$")

SUPPORTED = ("sqlite", "mysql", "postgresql")


class DialectError(ValueError):
    """The database dialect has no helpers, or a helper got an unusable argument."""


def _expr(value: object) -> str:
    text = str(value)
    if not _EXPRESSION.match(text):
        raise DialectError(f"not a plain SQL expression: {text!r}")
    return text


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DialectError(f"expected a whole number, got {value!r}")
    return value


def _sqlite() -> dict[str, Callable[..., str]]:
    return {
        "day": lambda e: f"date({_expr(e)})",
        "week": lambda e: f"date({_expr(e)}, 'weekday 0', '-6 days')",
        "month": lambda e: f"date({_expr(e)}, 'start of month')",
        "hour": lambda e: f"strftime('%Y-%m-%dT%H:00:00Z', {_expr(e)})",
        "add_minutes": lambda e, n: f"datetime({_expr(e)}, '{_count(n):+d} minutes')",
        "add_days": lambda e, n: f"datetime({_expr(e)}, '{_count(n):+d} days')",
        "seconds_between": lambda a, b: (
            f"ROUND((julianday({_expr(b)}) - julianday({_expr(a)})) * 86400.0, 3)"
        ),
        "url_host": lambda e: (
            f"lower(CASE WHEN instr({_expr(e)}, '://') > 0 THEN "
            f"CASE WHEN instr(substr({e}, instr({e}, '://') + 3), '/') > 0 "
            f"THEN substr(substr({e}, instr({e}, '://') + 3), 1, "
            f"instr(substr({e}, instr({e}, '://') + 3), '/') - 1) "
            f"ELSE substr({e}, instr({e}, '://') + 3) END ELSE NULL END)"
        ),
        "ratio": lambda a, b: f"(CAST({_expr(a)} AS REAL) / NULLIF({_expr(b)}, 0))",
    }


def _mysql() -> dict[str, Callable[..., str]]:
    return {
        "day": lambda e: f"DATE({_expr(e)})",
        "week": lambda e: f"DATE(DATE_SUB({_expr(e)}, INTERVAL WEEKDAY({e}) DAY))",
        "month": lambda e: f"DATE(DATE_FORMAT({_expr(e)}, '%Y-%m-01'))",
        "hour": lambda e: f"DATE_FORMAT({_expr(e)}, '%Y-%m-%dT%H:00:00Z')",
        "add_minutes": lambda e, n: f"({_expr(e)} + INTERVAL {_count(n)} MINUTE)",
        "add_days": lambda e, n: f"({_expr(e)} + INTERVAL {_count(n)} DAY)",
        "seconds_between": lambda a, b: f"TIMESTAMPDIFF(SECOND, {_expr(a)}, {_expr(b)})",
        "url_host": lambda e: (
            f"lower(CASE WHEN LOCATE('://', {_expr(e)}) > 0 THEN "
            f"SUBSTRING_INDEX(SUBSTRING_INDEX({e}, '://', -1), '/', 1) ELSE NULL END)"
        ),
        "ratio": lambda a, b: f"(({_expr(a)}) / NULLIF({_expr(b)}, 0))",
    }


def _postgresql() -> dict[str, Callable[..., str]]:
    return {
        "day": lambda e: f"CAST({_expr(e)} AS DATE)",
        "week": lambda e: f"CAST(date_trunc('week', {_expr(e)}) AS DATE)",
        "month": lambda e: f"CAST(date_trunc('month', {_expr(e)}) AS DATE)",
        "hour": lambda e: (
            f"to_char(date_trunc('hour', {_expr(e)}), 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')"
        ),
        "add_minutes": lambda e, n: f"({_expr(e)} + INTERVAL '{_count(n)} minutes')",
        "add_days": lambda e, n: f"({_expr(e)} + INTERVAL '{_count(n)} days')",
        "seconds_between": lambda a, b: f"EXTRACT(EPOCH FROM ({_expr(b)} - {_expr(a)}))",
        "url_host": lambda e: (
            f"lower(CASE WHEN strpos({_expr(e)}, '://') > 0 THEN "
            f"split_part(split_part({e}, '://', 2), '/', 1) ELSE NULL END)"
        ),
        "ratio": lambda a, b: f"(CAST({_expr(a)} AS DOUBLE PRECISION) / NULLIF({_expr(b)}, 0))",
    }


_BUILDERS = {"sqlite": _sqlite, "mysql": _mysql, "postgresql": _postgresql}

#: what each helper means, for README and the /api page
HELP = {
    "day": "day(expr): the UTC date of a datetime",
    "week": "week(expr): the Monday starting its week, as a date",
    "month": "month(expr): the first day of its month, as a date",
    "hour": "hour(expr): the start of its hour, as text 2026-11-23T08:00:00Z",
    "add_minutes": "add_minutes(expr, n): the datetime n minutes later (n may be negative)",
    "add_days": "add_days(expr, n): the datetime n days later",
    "seconds_between": "seconds_between(a, b): seconds from a to b, a number",
    "url_host": "url_host(expr): the lower-cased host of a URL, NULL when it has none",
    "ratio": "ratio(a, b): a / b as a fraction, NULL when b is 0",
}


def helpers(dialect: str) -> dict[str, Callable[..., str]]:
    """The template helpers for a SQLAlchemy dialect name; unknown dialects raise."""
    try:
        return _BUILDERS[dialect]()
    except KeyError:
        raise DialectError(
            f"no SQL helpers for database dialect {dialect!r} (supported: {', '.join(SUPPORTED)})"
        ) from None
