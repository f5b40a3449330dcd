"""``compare=previous``: a report next to the period of the same length just before its range.

The dashboard's headline and main chart show how a range compares with the one
before it. Asking once, with ``compare=previous``, gets both periods from the
same filters and parameters, and the changes worked out in one place: a rate
(a fraction 0..1, such as ``bounce_rate``) changes by percentage points
(41.3% -> 43.0% is +1.7 pp, not +4.3%), everything else by percent.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from crumby.reporting.reports import Result

#: the values ``compare`` accepts
COMPARISONS = ("previous",)
#: columns holding a fraction 0..1 (the dashboard formats them as percentages too)
_RATE = re.compile(r"(rate|ratio|share)$", re.IGNORECASE)


class CompareError(ValueError):
    """A ``compare`` value that is not one of COMPARISONS."""


def parse_compare(args: Mapping[str, str]) -> str | None:
    """The requested comparison, or None; CompareError for an unknown one."""
    value = args.get("compare")
    if value is None:
        return None
    if value not in COMPARISONS:
        raise CompareError(f"compare must be {' or '.join(COMPARISONS)}")
    return value


def previous_range(t0: dt.date, t1: dt.date) -> tuple[dt.date, dt.date]:
    """The local days of the same count just before t0..t1 (30 days before 30 days)."""
    length = (t1 - t0).days + 1
    return t0 - dt.timedelta(days=length), t0 - dt.timedelta(days=1)


def is_rate(column: str) -> bool:
    """Whether a column holds a fraction whose change is told in percentage points."""
    return bool(_RATE.search(column))


def change(column: str, now: Any, before: Any) -> dict[str, Any] | None:
    """``{"change": x, "unit": "pp" | "%"}`` from ``before`` to ``now``, rounded to 0.1.

    A rate changes by points (``(now - before) * 100``); any other number by percent of
    ``before``, with ``change`` None when ``before`` is 0 (no percentage exists). None for
    values that are not numbers.
    """
    numbers = (int, float)
    if isinstance(now, bool) or isinstance(before, bool):
        return None
    if not isinstance(now, numbers) or not isinstance(before, numbers):
        return None
    if is_rate(column):
        return {"change": round((now - before) * 100, 1), "unit": "pp"}
    if before == 0:
        return {"change": None if now else 0.0, "unit": "%"}
    return {"change": round((now - before) / abs(before) * 100, 1), "unit": "%"}


def comparison(current: Result, prior: Result) -> dict[str, Any]:
    """The JSON a report answer gains: ``previous`` (its range and rows) and, for a
    one-row report (the summary), ``changes`` per numeric column (None where no change
    can be told: from 0 by percent, or a rate of a period without any data)."""
    answer: dict[str, Any] = {
        "previous": {
            "t0": prior.t0.isoformat(),
            "t1": prior.t1.isoformat(),
            "columns": prior.columns,
            "data": prior.data,
        }
    }
    if len(current.data) == 1 and len(prior.data) == 1 and current.columns == prior.columns:
        changes = {}
        # a previous period without any data has no rate to compare with (its 0 bounce rate
        # means "no sessions", and +100 pp would say otherwise)
        empty = not any(v for v in prior.data[0] if isinstance(v, int | float))
        for n, column in enumerate(current.columns):
            found = change(column, current.data[0][n], prior.data[0][n])
            if found is not None and empty and found["unit"] == "pp":
                found = {"change": None, "unit": "pp"}
            if found is not None:
                changes[column] = found
        answer["changes"] = changes
    return answer
