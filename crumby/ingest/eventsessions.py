"""Events in their visitor's session: each event carries its session's start and attributes.

An event belongs to the session of its visitor that it falls in: the
visitor's newest view on the site at or before the event, if that view is at
most ``SESSION_TIMEOUT`` before it (the same rule as the ``funnel`` report's
once was). The pipeline copies that session's start and attributes
(``COPIED``: its ``session_start``, and ``ENTRY_COLUMNS``: its entry page and
source, campaign, and where and on what it began) onto the event row as it
is stored. So a filter narrows events with a plain comparison on the row a
report reads, as it does views (``filters(alias, by="events")``), instead of
finding the visitors with a matching view in the range at query time; and a
funnel finds an event's session by its ``session_start`` instead of joining
events to every session's span. An event outside any session (no view
before it on the site, an app event of a visitor never seen, a visitor
without id) keeps them NULL and matches only ``(none)``.

After deletions re-order a visitor's views (``crumby prune``, ``forget``),
``reattribute`` puts their events' columns right again.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from crumby.ingest.sessions import CHUNK, ENTRY_COLUMNS, SESSION_TIMEOUT
from crumby.models import Event, Visit

#: what an event copies from the view before it: its session's start and attributes
COPIED = ("session_start", *ENTRY_COLUMNS)
_TIMEOUT = dt.timedelta(seconds=SESSION_TIMEOUT)
_NOTHING: tuple[None, ...] = (None,) * len(COPIED)

#: one visitor's views in time order: (datetime, order, session attributes)
Timeline = list[tuple[dt.datetime, int, tuple[Any, ...]]]


def attribute_batch(
    connection: Connection, events: Sequence[dict[str, Any]], visits: Sequence[dict[str, Any]]
) -> None:
    """Fill the session columns of new event rows (in place), before they are inserted.

    ``visits`` are the batch's views, stitched already (they are not stored
    yet, and count as newer than every stored view at the same instant);
    ``connection`` sees the stored ones.
    """
    by_site: dict[int, list[dict[str, Any]]] = {}
    for row in events:
        if row.get("cid") is None:
            row.update(zip(COPIED, _NOTHING, strict=True))
        else:
            by_site.setdefault(row["site_id"], []).append(row)
    for site_id, rows in by_site.items():
        lo = min(row["datetime"] for row in rows) - _TIMEOUT
        hi = max(row["datetime"] for row in rows)
        cids = sorted({row["cid"] for row in rows})
        timelines = _stored(connection, site_id, cids, lo, hi)
        wanted = set(cids)
        for view in visits:
            cid = view.get("cid")
            if view["site_id"] == site_id and cid in wanted and lo <= view["datetime"] <= hi:
                entry = tuple(view.get(name) for name in COPIED)
                timelines.setdefault(cid, []).append((view["datetime"], 1 << 62, entry))
        for timeline in timelines.values():
            timeline.sort(key=lambda item: (item[0], item[1]))
        for row in rows:
            entry = session_of(timelines.get(row["cid"], []), row["datetime"])
            row.update(zip(COPIED, entry, strict=True))


def session_of(timeline: Timeline, when: dt.datetime) -> tuple[Any, ...]:
    """The start and attributes (``COPIED``) of the session an event at ``when`` falls in,
    or all None."""
    at = bisect.bisect_right(timeline, when, key=lambda item: item[0])
    if at == 0:
        return _NOTHING
    seen, _order, entry = timeline[at - 1]
    return entry if when - seen <= _TIMEOUT else _NOTHING


def _stored(
    connection: Connection, site_id: int, cids: list[str], lo: dt.datetime, hi: dt.datetime
) -> dict[str, Timeline]:
    """The stored, stitched views of these visitors on a site from ``lo`` to ``hi``."""
    visits = Visit.__table__
    statement = select(
        visits.c.cid, visits.c.datetime, visits.c.id, *(visits.c[n] for n in COPIED)
    ).where(
        visits.c.site_id == site_id,
        visits.c.cid.in_(bindparam("cids", expanding=True)),
        visits.c.datetime >= lo,
        visits.c.datetime <= hi,
        visits.c.session_seq.is_not(None),
    )
    timelines: dict[str, Timeline] = {}
    for begin in range(0, len(cids), CHUNK):
        for cid, when, id_, *entry in connection.execute(
            statement, {"cids": cids[begin : begin + CHUNK]}
        ):
            timelines.setdefault(cid, []).append((when, id_, tuple(entry)))
    return timelines


def reattribute(connection: Connection, pairs: Iterable[tuple[int, str | None]]) -> int:
    """Recompute the session columns (``COPIED``) of every event of these visitors.

    Returns the events changed. For a database upgraded from before events
    carried them, and after deletions re-stitch a visitor's views.
    """
    events, visits = Event.__table__, Visit.__table__
    by_site: dict[int, set[str]] = {}
    for site_id, cid in pairs:
        if cid is not None:
            by_site.setdefault(site_id, set()).add(cid)
    statement = (
        update(events)
        .where(events.c.id == bindparam("_id"))
        .values(**{name: bindparam(f"_{name}") for name in COPIED})
    )
    changed = 0
    for site_id, cid_set in sorted(by_site.items()):
        cids = sorted(cid_set)
        for begin in range(0, len(cids), CHUNK):
            chunk = cids[begin : begin + CHUNK]
            timelines: dict[str, Timeline] = {}
            for cid, when, id_, *entry in connection.execute(
                select(
                    visits.c.cid,
                    visits.c.datetime,
                    visits.c.id,
                    *(visits.c[n] for n in COPIED),
                ).where(
                    visits.c.site_id == site_id,
                    visits.c.cid.in_(chunk),
                    visits.c.session_seq.is_not(None),
                )
            ):
                timelines.setdefault(cid, []).append((when, id_, tuple(entry)))
            for timeline in timelines.values():
                timeline.sort(key=lambda item: (item[0], item[1]))
            updates = []
            for id_, cid, when, *stored in connection.execute(
                select(
                    events.c.id,
                    events.c.cid,
                    events.c.datetime,
                    *(events.c[n] for n in COPIED),
                ).where(events.c.site_id == site_id, events.c.cid.in_(chunk))
            ):
                entry = session_of(timelines.get(cid, []), when)
                if tuple(stored) != entry:
                    values = {f"_{name}": value for name, value in zip(COPIED, entry, strict=True)}
                    updates.append({"_id": id_, **values})
            if updates:
                connection.execute(statement, updates)
                changed += len(updates)
    return changed


def reattribute_all(connection: Connection) -> int:
    """``reattribute`` every visitor with events; returns the events changed."""
    events = Event.__table__
    pairs = connection.execute(
        select(events.c.site_id, events.c.cid).where(events.c.cid.is_not(None)).distinct()
    ).all()
    return reattribute(connection, [(site_id, cid) for site_id, cid in pairs])
