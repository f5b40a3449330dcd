"""The SQL helpers query templates call, so that one .sql file runs on every database.

Each helper renders SQL through the database's spec (``crumby.store``) and the
site's time zone (``crumby.reporting.localtime``): ``{{ day("v.datetime") }}`` is
the site's local date of a stored UTC datetime on SQLite, MySQL/MariaDB and
PostgreSQL alike. A small mapping was chosen over a transpiler such as sqlglot:
the differences reports need are a handful of date expressions, the helpers
produce SQL an author can read in ``crumby query --sql``, and a transpiler
would re-parse every author's SQL on every request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from crumby.sites import localtime
from crumby.store import DatabaseSpec, DialectError, spec_for
from crumby.store.base import count, expr

__all__ = ["DialectError", "HELP", "helpers"]

#: what each helper means, for README and the /api page
HELP = {
    "day": "day(expr): the site's local date of a stored (UTC) datetime",
    "hour": "hour(expr): the start of its local hour, as text 2026-11-23T09:00:00+01:00",
    "week": "week(expr): the Monday starting its local week, as a date",
    "month": "month(expr): the first day of its local month, as a date",
    "local": "local(expr): its local wall-clock time, as text 2026-11-23T09:15:00+01:00",
    "date_part": "date_part(expr): the date of a datetime as it is, no conversion (calendar days)",
    "week_part": "week_part(expr): the Monday of a datetime's week as it is, no conversion",
    "month_part": "month_part(expr): the first of a datetime's month as it is, no conversion",
    "hours": (
        "hours(): a row per local hour of the range (columns n: 1, 2, ... in time order, and "
        "hour: the text hour() gives), for joining hourly counts onto every hour"
    ),
    "add_minutes": "add_minutes(expr, n): the datetime n minutes later (n may be negative)",
    "add_days": "add_days(expr, n): the datetime n days later",
    "seconds_between": "seconds_between(a, b): seconds from a to b, a number",
    "url_host": "url_host(expr): the lower-cased host of a URL, NULL when it has none",
    "ratio": "ratio(a, b): a / b as a fraction, NULL when b is 0",
}


class LocalTime:
    """Builds the local-time SQL of one site's zone over one report's window."""

    def __init__(
        self,
        spec: DatabaseSpec,
        zone_name: str,
        start: dt.datetime,
        end: dt.datetime,
        binds: dict[str, Any],
    ) -> None:
        self.spec = spec
        self.stretch = localtime.stretches(zone_name, start, end)
        self.names: list[str] = []
        for n, boundary in enumerate(self.stretch.boundaries, start=1):
            name = f"tz_{n}"
            binds[name] = boundary
            self.names.append(name)

    def _cases(self, e: str, branch: Callable[[str, int], str]) -> str:
        """``branch(e + offset, offset)`` for the stretch that ``e`` falls in."""
        e = expr(e)
        offsets = self.stretch.offsets
        if not self.names:
            return branch(self._shift(e, offsets[0]), offsets[0])
        whens = " ".join(
            f"WHEN {e} < :{name} THEN {branch(self._shift(e, offset), offset)}"
            for name, offset in zip(self.names, offsets, strict=False)
        )
        return f"(CASE {whens} ELSE {branch(self._shift(e, offsets[-1]), offsets[-1])} END)"

    def _shift(self, e: str, offset: int) -> str:
        return e if offset == 0 else self.spec.add_seconds(e, offset)

    def local(self, e: str) -> str:
        """The local wall-clock datetime of ``e``."""
        return self._cases(e, lambda shifted, _offset: shifted)

    def day(self, e: str) -> str:
        """The local date of ``e``."""
        return self.spec.date_of(self.local(e))

    def week(self, e: str) -> str:
        """The Monday of ``e``'s local week."""
        return self.spec.week_of(self.local(e))

    def month(self, e: str) -> str:
        """The first of ``e``'s local month."""
        return self.spec.month_of(self.local(e))

    def local_text(self, e: str) -> str:
        """``e``'s local wall-clock time as ISO 8601 text with the offset that applied."""
        return self._cases(
            e,
            lambda shifted, offset: self.spec.text_of(shifted, localtime.offset_text(offset)),
        )

    def hour(self, e: str) -> str:
        """The start of ``e``'s local hour, ISO 8601 text with the offset that applied."""
        return self._cases(
            e,
            lambda shifted, offset: self.spec.hour_of(shifted, localtime.offset_text(offset)),
        )


#: the most hours ``hours()`` lists (a range of a few days; interval=hour allows 7)
MAX_HOURS = 24 * 32


def hour_rows(zone_name: str, start: dt.datetime, end: dt.datetime, binds: dict[str, Any]) -> str:
    """SQL rows ``(n, hour)`` for every local hour from the UTC instant ``start`` to ``end``.

    Each label is written as ``hour()`` writes it (``2026-11-23T09:00:00+01:00``), so that
    hourly counts join onto it; the labels travel as bound parameters ``:hour_1``, .... A
    day that falls back lists its repeated hour twice, with two offsets.
    """
    rows = []
    tz = localtime.zone(zone_name)
    at = start
    n = 0
    while at < end:
        n += 1
        if n > MAX_HOURS:  # a series of thousands of joined rows is a mistake: say so
            raise DialectError(f"hours() lists at most {MAX_HOURS} hours (32 days) of a range")
        local = at.replace(tzinfo=dt.UTC).astimezone(tz)
        offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
        wall = local.replace(tzinfo=None, minute=0, second=0, microsecond=0)
        binds[f"hour_{n}"] = wall.strftime("%Y-%m-%dT%H:00:00") + localtime.offset_text(offset)
        rows.append(f"SELECT {n} AS n, :hour_{n} AS hour")
        at += dt.timedelta(hours=1)
    if not rows:
        raise DialectError("hours(): the range holds no hour")
    return " UNION ALL ".join(rows)


def helpers(
    dialect: str,
    zone_name: str,
    start: dt.datetime,
    end: dt.datetime,
    binds: dict[str, Any],
) -> dict[str, Callable[..., str]]:
    """The template helpers for a database, a site's zone and a UTC window; unknown dialects raise.

    ``binds`` receives the bound parameters the local-time helpers use.
    """
    spec = spec_for(dialect)
    local = LocalTime(spec, zone_name, start, end, binds)
    return {
        "day": local.day,
        "hour": local.hour,
        "week": local.week,
        "month": local.month,
        "local": local.local_text,
        "date_part": spec.date_of,
        "week_part": spec.week_of,
        "month_part": spec.month_of,
        "add_minutes": lambda e, n: spec.add_seconds(e, 60 * count(n)),
        "add_days": lambda e, n: spec.add_seconds(e, 86400 * count(n)),
        "seconds_between": spec.seconds_between,
        "url_host": spec.url_host,
        "ratio": spec.ratio,
    }
