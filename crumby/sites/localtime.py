"""A site's local days: UTC offsets and their changes, for ranges and SQL buckets.

Datetimes are stored in UTC. A report's range runs from local midnight of its
first day to local midnight after its last (a daylight-saving day is 23 or 25
hours long), which Python works out with ``zoneinfo``; the range then travels
to SQL as UTC instants that the ``(site_id, datetime)`` index can use.

Buckets (``day``, ``hour``, ``week``, ``month``) need each row's local time.
MySQL's ``CONVERT_TZ`` needs time-zone tables most servers never load, and
SQLite has no time zones at all, so the conversion is written out in SQL:
within a report's window a zone has a handful of offsets at most, so the
local time of ``e`` is ``e`` plus the offset of the stretch it falls in,
``CASE WHEN e < :tz_1 THEN e + o0 WHEN e < :tz_2 THEN e + o1 ELSE e + o2 END``,
with the stretches' boundaries as bound parameters. A UTC site renders plain
``e``. Nothing is stored in local time, so changing a site's time zone
rewrites nothing: the next report simply renders other offsets.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: transitions are searched in this span (the calendar's, with a margin)
SEARCH_START = dt.datetime(1999, 1, 1)
SEARCH_END = dt.datetime(2101, 1, 1)


class UnknownZone(ValueError):
    """Not an IANA time zone name."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; UnknownZone for anything else."""
    if not isinstance(name, str) or not name or len(name) > 64 or name != name.strip():
        raise UnknownZone(f"unknown time zone: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownZone(
            f"unknown time zone: {name!r} (use an IANA name such as Europe/Berlin)"
        ) from None


def _offset(tz: ZoneInfo, utc: dt.datetime) -> int:
    """Seconds east of UTC at the naive UTC instant ``utc``."""
    local = utc.replace(tzinfo=dt.UTC).astimezone(tz)
    return int(local.utcoffset().total_seconds())  # type: ignore[union-attr]


@functools.lru_cache(maxsize=64)
def transitions(name: str) -> tuple[tuple[dt.datetime, ...], tuple[int, ...]]:
    """(instants, offsets): offsets[i] holds from instants[i] on; offsets[0] before instants[1].

    Found by sampling every six hours (zones change at most twice a year,
    never twice within hours) and bisecting each change to the second.
    """
    tz = zone(name)
    instants, offsets = [SEARCH_START], [_offset(tz, SEARCH_START)]
    step = dt.timedelta(hours=6)
    t = SEARCH_START
    while t < SEARCH_END:
        nxt = t + step
        after = _offset(tz, nxt)
        if after != offsets[-1]:
            lo, hi = t, nxt  # offset at lo is the old one, at hi the new one
            while (hi - lo) > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                if _offset(tz, mid) == offsets[-1]:
                    lo = mid
                else:
                    hi = mid
            instants.append(hi)
            offsets.append(after)
        t = nxt
    return tuple(instants), tuple(offsets)


@dataclass(frozen=True)
class Stretches:
    """A zone's offsets within a window: ``offsets[0]`` before ``boundaries[0]``, and so on."""

    boundaries: tuple[dt.datetime, ...]
    offsets: tuple[int, ...]


def stretches(name: str, start: dt.datetime, end: dt.datetime) -> Stretches:
    """The offsets of zone ``name`` between the naive UTC instants ``start`` and ``end``."""
    instants, offsets = transitions(name)
    first = max(bisect.bisect_right(instants, start) - 1, 0)
    last = max(bisect.bisect_right(instants, end) - 1, 0)
    return Stretches(
        boundaries=tuple(instants[first + 1 : last + 1]), offsets=tuple(offsets[first : last + 1])
    )


def local_midnight_utc(name: str, day: dt.date) -> dt.datetime:
    """The naive UTC instant at which local ``day`` begins.

    Where midnight does not exist (a zone that springs forward at 00:00),
    ``zoneinfo`` reads it with the offset before the change, which is exactly
    the instant of the change: the first instant of that local day.
    """
    local = dt.datetime.combine(day, dt.time(), tzinfo=zone(name))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def local_today(name: str, now: dt.datetime) -> dt.date:
    """The local date at the naive UTC instant ``now``."""
    return now.replace(tzinfo=dt.UTC).astimezone(zone(name)).date()


def offset_text(seconds: int) -> str:
    """``Z`` or ``+05:30``: the ISO 8601 suffix of an offset (rounded to the minute)."""
    if seconds == 0:
        return "Z"
    sign = "+" if seconds > 0 else "-"
    minutes = round(abs(seconds) / 60)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
