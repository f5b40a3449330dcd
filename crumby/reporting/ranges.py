"""The date range of a report request, validated strictly (contract section 6).

Request values reach SQL only as the dates this module returns: real calendar
dates inside the ``calendar`` table's span, never the raw strings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from crumby.database import CALENDAR_END, CALENDAR_START

DEFAULT_DAYS = 30
#: ASCII digits only: ``\d`` would also accept other scripts' digits
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAYS = re.compile(r"[0-9]{1,6}")


class RangeError(ValueError):
    """A range parameter that cannot be used; the message is one line for the caller."""


def today(timezone: str = "UTC", now: dt.datetime | None = None) -> dt.date:
    """The current local date of a site's zone (reports' days are the site's local days)."""
    from crumby.sites.localtime import local_today

    return local_today(timezone, now or dt.datetime.now(dt.UTC).replace(tzinfo=None))


def parse_date(name: str, raw: str) -> dt.date:
    """A ``YYYY-MM-DD`` string naming a real day inside the calendar's span."""
    if not isinstance(raw, str) or not _DATE.fullmatch(raw):
        raise RangeError(f"{name} must be a date as YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise RangeError(f"{name} is not a real date: {raw}") from None
    if not CALENDAR_START <= day <= CALENDAR_END:
        raise RangeError(f"{name} must be between {CALENDAR_START} and {CALENDAR_END}")
    return day


def parse_days(raw: str) -> int:
    """A non-negative whole number of days."""
    if not isinstance(raw, str) or not _DAYS.fullmatch(raw):
        raise RangeError("days must be a whole number, 0 or more")
    return int(raw)


def _first(args: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = args.get(name)
        if value is not None:
            return name, value
    return None


def parse_range(args: Mapping[str, str], now: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """``(t0, t1)`` from ``days``/``from``/``to`` (``t0``/``t1`` are aliases), inclusive.

    ``days=N`` is the N days up to and including ``to`` (default today);
    ``days=0`` and ``days=1`` both mean the single day ``to``. Without any
    parameter the range is the last 30 days.
    """
    for name, alias in (("from", "t0"), ("to", "t1")):
        # one name per value: an alias beside its name would be read by no one, unchecked
        if args.get(name) is not None and args.get(alias) is not None:
            raise RangeError(f"give {name} or {alias}, not both")
    start = _first(args, "from", "t0")
    end = _first(args, "to", "t1")
    days_raw = args.get("days")
    end_day = parse_date(*end) if end else (now or today())
    if start is not None:
        if end is None:
            raise RangeError(f"{start[0]} needs to as well")
        if days_raw is not None:
            raise RangeError("give either days or from/to, not both")
        t0 = parse_date(*start)
        if t0 > end_day:
            raise RangeError(f"{start[0]} must not be after {end[0]}")
        return t0, end_day
    if days_raw is None:
        if end is not None:
            raise RangeError(f"{end[0]} needs from (or days) as well")
        days = DEFAULT_DAYS
    else:
        days = parse_days(days_raw)
    span = max(days, 1) - 1
    if (end_day - CALENDAR_START).days < span:
        raise RangeError(f"days reaches before {CALENDAR_START}")
    return end_day - dt.timedelta(days=span), end_day
