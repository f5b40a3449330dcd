"""Rollups: the views folded per site and local day, kept as ingest goes, so reports read less.

The raw ``visits`` rows stay the source of truth; a rollup is derived from
them and always equal to folding them again. Each is a table of rows keyed by
site, local day (the site's zone, midnight, as ``calendar`` holds days) and a
64-bit hash of some view columns (``key``: NULLs cannot split it, and
MySQL's key length does not matter), with counts summed over the views that
fold into it:

- ``visitor_days`` (``VISITOR_DAYS``): per day of the view, visitor and the
  columns a device or place decides (browser, OS, device type, language,
  screen, country, region, city), the number of views. A ``COUNT(DISTINCT
  cid)`` or view count by those columns sees the same pairs of visitor and
  value as over the views: exact, from about one row per visitor and day.
- ``session_days`` (``SESSION_DAYS``): per day a session began and its
  entry's attributes (the ``entry_*`` columns every view of it carries), the
  sessions, their second views (so one-view sessions are the difference) and
  the seconds between their views: what ``summary`` and ``sessions`` count,
  under any filter, since every filter of whole sessions reads an ``entry_*``
  column. A view more than a day after its session began (a session of more
  than 24 hours of steady views) is not added to its length, nor one stored
  out of order and stitched onto a session that began after it.

Reports reach them through the ``visitor_rows`` and ``session_rows`` template
helpers (``crumby.reporting.aggregates``). Every change to the views keeps
them right: the pipeline step adds each batch (``count_batch``); ``forget``
rebuilds the days the visitor's views were on (``days_of``), ``prune`` the
day of its cut-off, and a zone change every day (``rebuild``). The pipeline reads each site's zone
under a shared lock on its row, and a rebuild replaces a day under an
exclusive one, so no batch is counted twice or under an old zone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, false, func, select

from crumby.ingest.sessions import ENTRY_COLUMNS
from crumby.models import SessionDay, Site, Visit, VisitorDay
from crumby.sites import localtime
from crumby.store import spec_of
from crumby.store.base import insert_rows

VISITS: Table = Visit.__table__  # type: ignore[assignment]
#: rows upserted per statement
CHUNK = 1000
#: how long after its session began a view still adds to the session's length
SESSION_REACH = dt.timedelta(days=1)
#: ``progress(day, views)`` after each local day a rebuild has read (views: so far)
Progress = Callable[[dt.date, int], None]
Row = Mapping[str, Any]


@dataclass(frozen=True)
class Rollup:
    """One rollup table: which view columns key it, what it sums and from which views."""

    table: Table
    #: the view columns kept (and hashed into the key)
    columns: tuple[str, ...]
    #: the summed columns
    counts: tuple[str, ...]
    #: the view column whose local day is the row's day
    moment: str
    #: how long after its moment a view may still add to a row (read that far on a rebuild)
    reach: dt.timedelta
    #: what a (non-bot) view adds to its row, or None for nothing
    adds: Callable[[Row], tuple[float, ...] | None]


def _a_view(row: Row) -> tuple[float, ...] | None:
    return (1,)


def _in_session(row: Row) -> tuple[float, ...] | None:
    start = row.get("session_start")
    # a view stored out of order can be stitched onto a later session: it adds nothing
    if start is None or not dt.timedelta(0) <= row["datetime"] - start < SESSION_REACH:
        return None
    seq = row.get("session_seq")
    return (1 if seq == 1 else 0, 1 if seq == 2 else 0, row.get("session_gap") or 0.0)


VISITOR_DAYS = Rollup(
    VisitorDay.__table__,  # type: ignore[arg-type]
    (
        "cid",
        "browser",
        "version",
        "platform",
        "os_version",
        "device",
        "lang",
        "screen_res",
        "country",
        "subdivision_1",
        "city",
    ),
    ("views",),
    "datetime",
    dt.timedelta(0),
    _a_view,
)
SESSION_DAYS = Rollup(
    SessionDay.__table__,  # type: ignore[arg-type]
    ENTRY_COLUMNS,
    ("sessions", "continued", "seconds"),
    "session_start",
    SESSION_REACH,
    _in_session,
)
ROLLUPS = (VISITOR_DAYS, SESSION_DAYS)
#: every view column a fold reads
_READ = tuple(
    dict.fromkeys(
        ("site_id", "datetime", "session_start", "session_seq", "session_gap")
        + VISITOR_DAYS.columns
        + SESSION_DAYS.columns
    )
)


def row_key(values: tuple[Any, ...]) -> int:
    """A signed 64-bit hash of a row's columns (None and '' hash apart)."""
    digest = hashlib.blake2b(repr(values).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def site_zones(connection: Connection, site_ids: Iterable[int]) -> dict[int, str]:
    """Each site's zone, read under a shared lock on its row (see the module's docstring)."""
    ids = sorted(set(site_ids))
    if not ids:
        return {}
    statement = select(Site.id, Site.timezone).where(Site.id.in_(ids)).with_for_update(read=True)
    return {id_: zone for id_, zone in connection.execute(statement)}


def fold(
    rollup: Rollup, rows: Iterable[Row], day_of: Callable[[Row], dt.datetime]
) -> dict[tuple[int, dt.datetime, int], dict[str, Any]]:
    """Non-bot views folded into a rollup's rows, keyed by site, local day and key."""
    folded: dict[tuple[int, dt.datetime, int], dict[str, Any]] = {}
    for row in rows:
        if row.get("is_bot"):
            continue
        adds = rollup.adds(row)
        if adds is None:
            continue
        values = tuple(row.get(name) for name in rollup.columns)
        where = (row["site_id"], day_of(row), row_key(values))
        found = folded.get(where)
        if found is None:
            folded[where] = {
                "site_id": where[0],
                "day": where[1],
                "key": where[2],
                **dict(zip(rollup.columns, values, strict=True)),
                **dict(zip(rollup.counts, adds, strict=True)),
            }
        else:
            for name, n in zip(rollup.counts, adds, strict=True):
                found[name] += n
    return folded


def local_days(rollup: Rollup, zones: Mapping[int, str]) -> Callable[[Row], dt.datetime]:
    """A view's local day (midnight) of the rollup's moment, in its site's zone."""
    tzs = {site_id: localtime.zone(name) for site_id, name in zones.items()}
    moment = rollup.moment

    def day_of(row: Row) -> dt.datetime:
        local = row[moment].replace(tzinfo=dt.UTC).astimezone(tzs[row["site_id"]])
        return dt.datetime(local.year, local.month, local.day)

    return day_of


def _add(connection: Connection, rollup: Rollup, rows: list[dict[str, Any]]) -> None:
    spec = spec_of(connection)
    # one order of keys: concurrent upserts of overlapping rows lock them in the same order
    rows.sort(key=lambda row: (row["site_id"], row["day"], row["key"]))
    for begin in range(0, len(rows), CHUNK):
        spec.add_counts(connection, rollup.table, rows[begin : begin + CHUNK], rollup.counts)


def count_batch(connection: Connection, views: Sequence[Row]) -> None:
    """Add a batch's views (each with its ``site_id`` and session columns) to every rollup."""
    if not views:
        return
    zones = site_zones(connection, (row["site_id"] for row in views))
    for rollup in ROLLUPS:
        _add(connection, rollup, list(fold(rollup, views, local_days(rollup, zones)).values()))


def days_of(connection: Connection, site_id: int, views: Sequence[Row]) -> set[dt.date]:
    """The local days whose rollup rows the given views add to (to rebuild once they go)."""
    zone = connection.scalar(select(Site.timezone).where(Site.id == site_id)) or "UTC"
    found: set[dt.date] = set()
    for rollup in ROLLUPS:
        day_of = local_days(rollup, {site_id: zone})
        found.update(day_of(row).date() for row in views if rollup.adds(row) is not None)
    return found


def delete_visitor(connection: Connection, site_id: int, cid: str) -> None:
    """Delete a visitor's ``visitor_days`` rows (``forget``: no row of them may remain)."""
    table = VISITOR_DAYS.table
    connection.execute(delete(table).where(table.c.site_id == site_id, table.c.cid == cid))


def views_to_fold(connection: Connection, where: Sequence[Any]) -> list[dict[str, Any]]:
    """The non-bot views matching ``where``, with the columns a fold reads."""
    statement = select(*(VISITS.c[name] for name in _READ)).where(
        *where, VISITS.c.is_bot == false()
    )
    return [dict(zip(_READ, row, strict=True)) for row in connection.execute(statement)]


def delete_site(connection: Connection, site_id: int) -> None:
    """Delete every rollup row of a site."""
    for rollup in ROLLUPS:
        connection.execute(delete(rollup.table).where(rollup.table.c.site_id == site_id))


def view_days(connection: Connection, site_id: int, zone: str) -> tuple[dt.date, dt.date] | None:
    """The local days of a site's first and last non-bot views, None without any."""
    first, last = connection.execute(
        select(func.min(VISITS.c.datetime), func.max(VISITS.c.datetime)).where(
            VISITS.c.site_id == site_id, VISITS.c.is_bot == false()
        )
    ).one()
    if first is None:
        return None
    return localtime.local_today(zone, first), localtime.local_today(zone, last)


def rebuild(
    connection: Connection,
    site_id: int,
    zone: str,
    first: dt.date | None = None,
    last: dt.date | None = None,
    progress: Progress | None = None,
    commit: bool = False,
) -> int:
    """Rebuild a site's rollups of local days ``first``..``last`` (None: open) from its views;
    returns the views read (for the first rollup).

    Days are read one at a time off the ``(site_id, datetime)`` index (a run of
    days without views is skipped in one look), so memory holds a day or two.
    Each day is replaced under a lock on the site's row, so that no batch of
    the site adds to it meanwhile. With ``commit``, each day is committed on
    its own (``crumby rebuild`` on a live site: hits wait for one day at
    most); otherwise all is in the caller's transaction (a zone change, an
    upgrade, a prune).
    """
    read = 0
    done: dt.date | None = None if first is None else first - dt.timedelta(days=1)
    at = None if first is None else localtime.local_midnight_utc(zone, first)
    end = None if last is None else localtime.local_midnight_utc(zone, last + dt.timedelta(days=1))
    while True:
        next_view = select(func.min(VISITS.c.datetime)).where(
            VISITS.c.site_id == site_id, VISITS.c.is_bot == false()
        )
        if at is not None:
            next_view = next_view.where(VISITS.c.datetime >= at)
        when = connection.execute(next_view).scalar()
        if when is None or (end is not None and when >= end):
            break
        day = localtime.local_today(zone, when)
        start = localtime.local_midnight_utc(zone, day)
        at = localtime.local_midnight_utc(zone, day + dt.timedelta(days=1))
        midnight = dt.datetime.combine(day, dt.time())
        _lock(connection, site_id)
        for rollup in ROLLUPS:
            _clear(connection, rollup, site_id, done, day)
            moment = VISITS.c[rollup.moment]
            views = views_to_fold(
                connection,
                (
                    VISITS.c.site_id == site_id,
                    VISITS.c.datetime >= start,
                    VISITS.c.datetime < at + rollup.reach,
                    moment >= start,
                    moment < at,
                ),
            )
            # the day's rows were deleted just now: plain inserts, no upsert
            folded = fold(rollup, views, lambda _row, midnight=midnight: midnight)
            insert_rows(connection, rollup.table, list(folded.values()))
            if rollup is ROLLUPS[0]:
                read += len(views)
        if commit:
            connection.commit()
        done = day
        if progress is not None:
            progress(day, read)
    _lock(connection, site_id)
    for rollup in ROLLUPS:
        _clear(connection, rollup, site_id, done, last)
    if commit:
        connection.commit()
    return read


def _lock(connection: Connection, site_id: int) -> None:
    """Lock the site's row: batches of the site wait (``site_zones`` reads it shared)."""
    connection.execute(select(Site.id).where(Site.id == site_id).with_for_update())


def _clear(
    connection: Connection,
    rollup: Rollup,
    site_id: int,
    after: dt.date | None,
    until: dt.date | None,
) -> None:
    """Delete a site's rollup rows of days after ``after`` up to ``until`` (None: open)."""
    table = rollup.table
    where = [table.c.site_id == site_id]
    if after is not None:
        where.append(table.c.day > dt.datetime.combine(after, dt.time()))
    if until is not None:
        where.append(table.c.day <= dt.datetime.combine(until, dt.time()))
    connection.execute(delete(table).where(*where))
