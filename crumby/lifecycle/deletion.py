"""Deleting stored rows on purpose: old ones (``prune``) and one visitor's (``forget``).

Both keep what is derived from the rows right (contract section 11):

- **Sessions.** Each view carries its place in its visitor's session
  (``crumby.ingest.sessions``). When views go, the views left of the same
  visitors on the same sites are re-stitched (``restitch_visitors``), so the
  first view left of a session becomes its entry. ``forget`` removes a
  visitor entirely, so nobody else's sessions change; ``prune`` cuts
  sessions that span its cut-off, and only those visitors are re-stitched,
  and their events take their sessions' new attributes
  (``crumby.ingest.eventsessions``).
- **Rollups** (``crumby.ingest.rollups``). ``forget`` deletes the
  visitor's ``visitor_days`` rows and rebuilds the local days the visitor's
  views were counted on; ``prune`` deletes the local days
  before the cut-off's and rebuilds the day it falls in (and the next: a
  session cut there may now begin after midnight) from the views left.
- **Cached reports.** Every site that lost rows gets a new ``data_version``,
  which is part of the report cache's keys: no answer computed before the
  deletion is served after it.

Rows go per site (every read uses a ``(site_id, ...)`` index) and in chunks
of ``CHUNK`` ids, so that no statement grows with the table. ``prune``
commits after every chunk, so that a first prune of years of data never
holds the write lock for long (on SQLite, hits wait for it at most a few
seconds); ``forget`` is one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, Table, delete, select, update

from crumby.ingest import rollups
from crumby.ingest.eventsessions import reattribute
from crumby.ingest.sessions import SESSION_TIMEOUT, restitch_visitors
from crumby.models import Event, Site, Visit
from crumby.sites import localtime

VISITS: Table = Visit.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]
#: rows deleted per statement (and, for ``prune``, per transaction)
CHUNK = 5000


@dataclass
class Deleted:
    """What a deletion removed, and what it had to put right."""

    visits: int = 0
    events: int = 0
    #: the ids of the sites that lost rows (their data_version moved on)
    sites: set[int] = field(default_factory=set)
    #: views left whose session columns changed
    restitched: int = 0


def prune(connection: Connection, before: dt.datetime, chunk: int = CHUNK) -> Deleted:
    """Delete the visits and events of every site whose datetime is before ``before`` (UTC).

    It commits after every chunk: pass a connection from ``engine.connect()``,
    not one inside a ``begin()`` block. Re-stitching a site's remaining views
    and moving its data version on happen together in the site's last
    transaction. Should a prune stop half-way, the next one (with the same or
    a later cut-off) still finds the sessions cut at its own cut-off.
    """
    done = Deleted()
    for site_id in _site_ids(connection):
        events = _delete(connection, EVENTS, _older(EVENTS, site_id, before), chunk, commit=True)
        visits = _delete(connection, VISITS, _older(VISITS, site_id, before), chunk, commit=True)
        cut = _cut_sessions(connection, site_id, before)
        restitched = restitch_visitors(connection, cut)
        reattribute(connection, cut)
        # also when no view went now: a prune stopped half-way left them to this one
        _prune_rollups(connection, site_id, before)
        if visits or events or restitched:
            _new_data_version(connection, site_id)
            done.sites.add(site_id)
        connection.commit()
        done.visits += visits
        done.events += events
        done.restitched += restitched
    return done


def forget(connection: Connection, cid: str, chunk: int = CHUNK) -> Deleted:
    """Delete every visit and event of visitor ``cid`` on every site, in the caller's transaction.

    Sessions belong to one visitor on one site, so no other visitor's views
    change; the visitor's own are re-stitched all the same, which finds none.
    """
    done = Deleted()
    for site_id in _site_ids(connection):
        events = _delete(connection, EVENTS, _of_visitor(EVENTS, site_id, cid), chunk)
        gone = rollups.views_to_fold(connection, _of_visitor(VISITS, site_id, cid))
        visits = _delete(connection, VISITS, _of_visitor(VISITS, site_id, cid), chunk)
        # the visitor's rows go even where their views went some other way
        rollups.delete_visitor(connection, site_id, cid)
        if visits or events:
            _rebuild_days(connection, site_id, rollups.days_of(connection, site_id, gone))
            done.restitched += restitch_visitors(connection, [(site_id, cid)])
            _new_data_version(connection, site_id)
            done.sites.add(site_id)
        done.visits += visits
        done.events += events
    return done


def _rebuild_days(connection: Connection, site_id: int, days: set[dt.date]) -> None:
    """Rebuild the site's rollups of these local days, runs of days at a time."""
    zone = connection.scalar(select(Site.timezone).where(Site.id == site_id)) or "UTC"
    ordered = sorted(days)
    while ordered:
        first = last = ordered.pop(0)
        while ordered and ordered[0] == last + dt.timedelta(days=1):
            last = ordered.pop(0)
        rollups.rebuild(connection, site_id, zone, first, last)


def _prune_rollups(connection: Connection, site_id: int, before: dt.datetime) -> None:
    """The local days before the cut-off's go; the day it falls in and the next are rebuilt
    from the views left (a session cut is re-stitched to begin at most 30 minutes later)."""
    zone = connection.scalar(select(Site.timezone).where(Site.id == site_id)) or "UTC"
    day = localtime.local_today(zone, before)
    for rollup in rollups.ROLLUPS:
        table = rollup.table
        connection.execute(
            delete(table).where(
                table.c.site_id == site_id, table.c.day < dt.datetime.combine(day, dt.time())
            )
        )
    rollups.rebuild(connection, site_id, zone, day, day + dt.timedelta(days=1))


def _site_ids(connection: Connection) -> list[int]:
    return list(connection.scalars(select(Site.id).order_by(Site.id)))


def _older(table: Table, site_id: int, before: dt.datetime) -> Sequence[ColumnElement[bool]]:
    return (table.c.site_id == site_id, table.c.datetime < before)


def _of_visitor(table: Table, site_id: int, cid: str) -> Sequence[ColumnElement[bool]]:
    return (table.c.site_id == site_id, table.c.cid == cid)


def _delete(
    connection: Connection,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    chunk: int,
    commit: bool = False,
) -> int:
    """Delete the rows matching ``where``, ``chunk`` ids per statement; returns how many."""
    gone = 0
    while True:
        ids = connection.scalars(select(table.c.id).where(*where).limit(chunk)).all()
        if not ids:
            return gone
        connection.execute(delete(table).where(table.c.id.in_(ids)))
        gone += len(ids)
        if commit:
            connection.commit()


def _cut_sessions(
    connection: Connection, site_id: int, before: dt.datetime
) -> list[tuple[int, str]]:
    """The visitors of a site with a view left whose session began before ``before``.

    Such a session's first view left is at most SESSION_TIMEOUT after the
    deleted view before it, so looking at that half hour after the cut-off,
    off the (site_id, datetime) index, finds every one of them.
    """
    until = before + dt.timedelta(seconds=SESSION_TIMEOUT)
    cids = connection.scalars(
        select(VISITS.c.cid)
        .where(
            VISITS.c.site_id == site_id,
            VISITS.c.datetime >= before,
            VISITS.c.datetime < until,
            VISITS.c.session_start < before,
            VISITS.c.cid.is_not(None),
        )
        .distinct()
    )
    return [(site_id, cid) for cid in cids]


def _new_data_version(connection: Connection, site_id: int) -> None:
    """Cached report answers of the site are not served after this."""
    connection.execute(
        update(Site).where(Site.id == site_id).values(data_version=Site.data_version + 1)
    )
