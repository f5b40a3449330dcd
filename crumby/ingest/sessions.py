"""Visits stitched into sessions as they are stored, so that reports need no window functions.

A session is one visitor's views on one site with gaps of at most ``SESSION_TIMEOUT``
(30 minutes). Every visit row carries where it stands in its session:

- ``session_start``: when the session's first view (its entry) happened;
- ``session_seq``: the view's place in the session, 1 for the entry;
- ``session_gap``: seconds since the session's previous view, 0 for the entry.

A report then counts sessions as entry views, one-view sessions (bounces) as
entries minus second views, and a session's length as the sum of its gaps:
plain aggregates over the datetime index. Working this out at read time
instead needs ``LAG() OVER (PARTITION BY cid ORDER BY datetime)``, a sort of
every view in the range, which cost seconds per report on a year of traffic.

The ingest pipeline stitches each batch against the newest stored view of
each visitor on its site (``stitch_batch``); every writer goes through it, so
rows arrive stitched. ``restitch`` recomputes the whole history of visitors
whose rows lack the columns (a database upgraded from version 1) or whose
views were stored out of order. Views without a visitor id are sessions of
their own.

Two server processes storing views of the same visitor in the same few
milliseconds can both see the same previous view; SQLite's writers take
turns, so this can happen only on MySQL/PostgreSQL, for views a human cannot
produce that close together.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Select,
    bindparam,
    or_,
    select,
    true,
    update,
)

from crumby.models import Visit
from crumby.store import spec_of

#: a view more than this many seconds after the visitor's previous one starts a new session
SESSION_TIMEOUT = 1800

#: visitors looked up or restitched per statement
CHUNK = 500


class Last(NamedTuple):
    """A visitor's newest view: when it happened, its session's start, its place in it."""

    datetime: dt.datetime
    start: dt.datetime
    seq: int


def follow(last: Last | None, when: dt.datetime) -> tuple[Last, float]:
    """Where a view at ``when`` stands after the visitor's ``last`` view, and the gap before it.

    A view that arrives out of order (stored by another process a moment
    later) continues the session with a gap of 0 rather than a negative one.
    """
    if last is not None:
        gap = (when - last.datetime).total_seconds()
        if gap <= SESSION_TIMEOUT:
            newest = when if when > last.datetime else last.datetime
            return Last(newest, last.start, last.seq + 1), round(max(gap, 0.0), 3)
    return Last(when, when, 1), 0.0


@functools.lru_cache(maxsize=1)
def _newest_views_statement() -> Select:
    """The views of some visitors (``:cids``) on a site since ``:since``, built once.

    ``datetime >= :since`` (only a view of the last 30 minutes can continue a
    session) keeps it to a visitor's last few views, read off the (site_id,
    cid, datetime, id) index; ``newest_views`` keeps each one's newest. One
    statement with an expanding ``IN`` compiles once per process: a ``UNION
    ALL`` of one ``ORDER BY ... LIMIT 1`` probe per visitor, as before, cost
    SQLAlchemy seconds to compile for each new number of visitors and tens of
    milliseconds per execution for its cache key.
    """
    visits = Visit.__table__
    return select(
        visits.c.cid,
        visits.c.datetime,
        visits.c.id,
        visits.c.session_start,
        visits.c.session_seq,
    ).where(
        visits.c.site_id == bindparam("site_id"),
        visits.c.cid.in_(bindparam("cids", expanding=True)),
        visits.c.datetime >= bindparam("since", type_=DateTime()),
        visits.c.session_seq.is_not(None),
    )


def newest_views(
    connection: Connection, site_id: int, cids: Iterable[str | None], since: dt.datetime
) -> dict[str, Last]:
    """Each visitor's newest stitched view on a site at or after ``since`` (ties: newest id)."""
    found: dict[str, Last] = {}
    order: dict[str, tuple[dt.datetime, int]] = {}
    wanted = sorted({cid for cid in cids if cid is not None})
    statement = _newest_views_statement()
    for begin in range(0, len(wanted), CHUNK):
        params: dict[str, Any] = {
            "cids": wanted[begin : begin + CHUNK],
            "since": since,
            "site_id": site_id,
        }
        for cid, when, id_, start, seq in connection.execute(statement, params):
            if cid not in order or (when, id_) > order[cid]:
                order[cid] = (when, id_)
                found[cid] = Last(when, start, seq)
    return found


def stitch_batch(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Fill the session columns of new visit rows (in place), before they are inserted.

    ``connection`` must see the stored visits and every row must have its
    ``site_id``; rows are taken in time order, so several views of one
    visitor in the same batch chain correctly.
    """
    by_site: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_site.setdefault(row["site_id"], []).append(row)
    for site_id, site_rows in by_site.items():
        _stitch_site(connection, site_id, site_rows)


def _stitch_site(connection: Connection, site_id: int, rows: list[dict[str, Any]]) -> None:
    # only a view in the last SESSION_TIMEOUT seconds can continue a session
    since = min(row["datetime"] for row in rows) - dt.timedelta(seconds=SESSION_TIMEOUT)
    last = newest_views(connection, site_id, (row.get("cid") for row in rows), since)
    for row in sorted(rows, key=lambda row: row["datetime"]):
        cid = row.get("cid")
        current, gap = follow(last.get(cid) if cid is not None else None, row["datetime"])
        if cid is not None:
            last[cid] = current
        row["session_start"] = current.start
        row["session_seq"] = current.seq
        row["session_gap"] = gap


def restitch(connection: Connection, everything: bool = False) -> int:
    """Re-stitch visitors with views lacking session columns (or all); returns rows changed.

    Each such visitor's whole history on each site is recomputed in time
    order, so views stored late or out of order end up where they belong.
    """
    visits = Visit.__table__
    spec_of(connection).analyze(connection, "visits")
    alone = connection.execute(
        update(visits)
        .where(visits.c.cid.is_(None), true() if everything else _unstitched())
        .values(session_start=visits.c.datetime, session_seq=1, session_gap=0.0)
    )
    changed = max(alone.rowcount, 0)  # a driver that cannot tell says -1
    wanted = select(visits.c.site_id, visits.c.cid).where(visits.c.cid.is_not(None))
    if not everything:
        wanted = wanted.where(_unstitched())
    pairs = connection.execute(wanted.distinct()).all()
    statement = (
        update(visits)
        .where(visits.c.id == bindparam("_id"))
        .values(
            session_start=bindparam("_start"),
            session_seq=bindparam("_seq"),
            session_gap=bindparam("_gap"),
        )
    )
    by_site: dict[int, list[str]] = {}
    for site_id, cid in pairs:
        by_site.setdefault(site_id, []).append(cid)
    for site_id, cids in by_site.items():
        for begin in range(0, len(cids), CHUNK):
            updates = list(_restitch(connection, site_id, cids[begin : begin + CHUNK]))
            if updates:
                connection.execute(statement, updates)
                changed += len(updates)
    return changed


def _unstitched() -> ColumnElement[bool]:
    """Visits that lack any of the session columns."""
    visits = Visit.__table__
    return or_(
        visits.c.session_seq.is_(None),
        visits.c.session_start.is_(None),
        visits.c.session_gap.is_(None),
    )


def _restitch(connection: Connection, site_id: int, cids: list[str]) -> Iterable[dict[str, Any]]:
    """The updates that put these visitors' views on one site where they belong."""
    visits = Visit.__table__
    rows = connection.execute(
        select(
            visits.c.id,
            visits.c.cid,
            visits.c.datetime,
            visits.c.session_start,
            visits.c.session_seq,
            visits.c.session_gap,
        )
        .where(visits.c.site_id == site_id, visits.c.cid.in_(cids))
        .order_by(visits.c.cid, visits.c.datetime, visits.c.id)
    )
    last: Last | None = None
    previous_cid = None
    for id_, cid, when, start, seq, gap in rows:
        if cid != previous_cid:
            last, previous_cid = None, cid
        last, new_gap = follow(last, when)
        if (start, seq, gap) != (last.start, last.seq, new_gap):
            yield {"_id": id_, "_start": last.start, "_seq": last.seq, "_gap": new_gap}
