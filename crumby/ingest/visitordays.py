"""Visitor days: the views of each visitor, local day and device/place, kept as ingest goes.

Most reports count distinct visitors (and views) by something a visitor's
device or place decides: browser, OS, device type, language, screen,
country, region, city. Over a year of raw views such a ``COUNT(DISTINCT
cid)`` reads every view. The pairs of visitor and value it counts are the
same when each visitor's views of a day are first folded into one row per
combination of those columns, with the number of views: ``visitor_days``
(``crumby.models.VisitorDay``), about one row per visitor and day. Counted
from it, the answer is exact, not an estimate; reports reach it through the
``visitor_rows`` template helper (``crumby.reporting.aggregates``).

Days are the site's local dates, worked out here from its zone; so a change
of zone, and every deletion, rebuilds the days it touches from the views
(``rebuild``). The pipeline step (``count_batch``) reads the zone of each
site in its batch with a shared lock on the site's row: a zone change
(``crumby.sites.change_site``) locks the row before it rebuilds, so a batch
is counted either before the rebuild (which then reads its views) or after
it, with the new zone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, delete, false, func, select

from crumby.models import Site, Visit, VisitorDay
from crumby.sites import localtime
from crumby.store import spec_of
from crumby.store.base import insert_rows

VISITS: Table = Visit.__table__  # type: ignore[assignment]
TABLE: Table = VisitorDay.__table__  # type: ignore[assignment]
#: the view columns a visitor day keeps (the visitor and what a device or place decides)
COLUMNS = (
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
)
#: rows upserted per statement
CHUNK = 1000
#: ``progress(day, views)`` after each local day a rebuild has read (views: so far)
Progress = Callable[[dt.date, int], None]


def row_key(values: tuple[str | None, ...]) -> int:
    """A signed 64-bit hash of a visitor day's columns (None and '' hash apart)."""
    digest = hashlib.blake2b(repr(values).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def site_zones(connection: Connection, site_ids: Iterable[int]) -> dict[int, str]:
    """Each site's zone, read under a shared lock on its row (see the module's docstring)."""
    ids = sorted(set(site_ids))
    if not ids:
        return {}
    statement = select(Site.id, Site.timezone).where(Site.id.in_(ids)).with_for_update(read=True)
    return {id_: zone for id_, zone in connection.execute(statement)}


def _fold(
    rows: Iterable[Mapping[str, Any]], day_of: Callable[[Mapping[str, Any]], dt.datetime]
) -> dict[tuple[int, dt.datetime, int], dict[str, Any]]:
    """Non-bot views folded into visitor day rows, keyed by site, local day and key."""
    folded: dict[tuple[int, dt.datetime, int], dict[str, Any]] = {}
    for row in rows:
        if row.get("is_bot"):
            continue
        site_id = row["site_id"]
        day = day_of(row)
        values = tuple(row.get(name) for name in COLUMNS)
        key = row_key(values)
        found = folded.get((site_id, day, key))
        if found is None:
            folded[(site_id, day, key)] = {
                "site_id": site_id,
                "day": day,
                "key": key,
                **dict(zip(COLUMNS, values, strict=True)),
                "views": 1,
            }
        else:
            found["views"] += 1
    return folded


def _local_days(zones: Mapping[int, str]) -> Callable[[Mapping[str, Any]], dt.datetime]:
    """A row's local day (midnight) in its site's zone."""
    tzs = {site_id: localtime.zone(name) for site_id, name in zones.items()}

    def day_of(row: Mapping[str, Any]) -> dt.datetime:
        local = row["datetime"].replace(tzinfo=dt.UTC).astimezone(tzs[row["site_id"]])
        return dt.datetime(local.year, local.month, local.day)

    return day_of


def _add(connection: Connection, rows: list[dict[str, Any]]) -> None:
    spec = spec_of(connection)
    # a fixed order of keys: concurrent upserts of overlapping rows lock them in one order
    rows.sort(key=lambda row: (row["site_id"], row["day"], row["key"]))
    for begin in range(0, len(rows), CHUNK):
        spec.add_counts(connection, TABLE, rows[begin : begin + CHUNK], ("views",))


def count_batch(connection: Connection, views: list[dict[str, Any]]) -> None:
    """Add a batch's views (each with its ``site_id``) to their visitor days."""
    if not views:
        return
    zones = site_zones(connection, (row["site_id"] for row in views))
    _add(connection, list(_fold(views, _local_days(zones)).values()))


def forget(connection: Connection, site_id: int, cid: str) -> None:
    """Delete a visitor's days on a site (their views are gone)."""
    connection.execute(delete(TABLE).where(TABLE.c.site_id == site_id, TABLE.c.cid == cid))


def delete_site(connection: Connection, site_id: int) -> None:
    """Delete every visitor day of a site."""
    connection.execute(delete(TABLE).where(TABLE.c.site_id == site_id))


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
    """Rebuild a site's visitor days of local days ``first``..``last`` (None: open) from its
    views; returns the views read.

    Days are read one at a time off the ``(site_id, datetime)`` index (a run of
    days without views is skipped in one look), so memory holds one day. Each
    day is replaced under a lock on the site's row, so that no batch of the
    site adds to it meanwhile. With ``commit``, each day is committed on its
    own (``crumby rebuild`` on a live site: hits wait for one day at most);
    otherwise all is in the caller's transaction (a zone change, an upgrade).
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
        at = localtime.local_midnight_utc(zone, day + dt.timedelta(days=1))
        _lock(connection, site_id)
        _clear(connection, site_id, done, day)
        views = _views_of_day(connection, site_id, localtime.local_midnight_utc(zone, day), at)
        midnight = dt.datetime.combine(day, dt.time())
        # the day's rows were deleted just now: plain inserts, no upsert
        folded = _fold(views, lambda _row, midnight=midnight: midnight)
        insert_rows(connection, TABLE, list(folded.values()))
        if commit:
            connection.commit()
        read += len(views)
        done = day
        if progress is not None:
            progress(day, read)
    _lock(connection, site_id)
    _clear(connection, site_id, done, last)
    if commit:
        connection.commit()
    return read


def _lock(connection: Connection, site_id: int) -> None:
    """Lock the site's row: batches of the site wait (``site_zones`` reads it shared)."""
    connection.execute(select(Site.id).where(Site.id == site_id).with_for_update())


def _clear(
    connection: Connection, site_id: int, after: dt.date | None, until: dt.date | None
) -> None:
    """Delete the site's visitor days after ``after`` up to ``until`` (None: open)."""
    where = [TABLE.c.site_id == site_id]
    if after is not None:
        where.append(TABLE.c.day > dt.datetime.combine(after, dt.time()))
    if until is not None:
        where.append(TABLE.c.day <= dt.datetime.combine(until, dt.time()))
    connection.execute(delete(TABLE).where(*where))


_NAMES = ("site_id", "datetime", *COLUMNS)


def _views_of_day(
    connection: Connection, site_id: int, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """The non-bot views of a site from ``start`` to ``end`` (UTC), the columns a fold needs."""
    statement = select(*(VISITS.c[name] for name in _NAMES)).where(
        VISITS.c.site_id == site_id,
        VISITS.c.datetime >= start,
        VISITS.c.datetime < end,
        VISITS.c.is_bot == false(),
    )
    return [dict(zip(_NAMES, row, strict=True)) for row in connection.execute(statement)]
