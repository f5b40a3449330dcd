"""Visits stitched into sessions as they are stored, so that reports need no window functions.

A session is one visitor's views on one site with gaps of at most ``SESSION_TIMEOUT``
(30 minutes). Every visit row carries where it stands in its session:

- ``session_start``: when the session's first view (its entry) happened;
- ``session_seq``: the view's place in the session, 1 for the entry;
- ``session_gap``: seconds since the session's previous view, 0 for the entry;
- ``next_gap``: seconds until the session's next view, NULL for its last view
  (its exit), filled in when that next view is stitched (``crumby.ingest.exits``).
- ``entry_page``, ``entry_source``, ``entry_utm_*`` and ``entry_country``,
  ``entry_region``, ``entry_city``, ``entry_browser``, ``entry_os``,
  ``entry_device``, ``entry_language`` (``ENTRY_COLUMNS``): the session's
  attributes, those of its entry view (its path, its source as
  ``crumby.models.view_source`` names it, its campaign, where and on what it
  was seen), so that a report narrowed to sessions from somewhere
  (``source=news.example``), or counting whole sessions under a view filter,
  reads each view's own columns instead of finding each session's entry.

A report then counts sessions as entry views, one-view sessions (bounces) as
entries minus second views, and a session's length as the sum of its gaps:
plain aggregates over the datetime index. Working this out at read time
instead needs ``LAG() OVER (PARTITION BY cid ORDER BY datetime)``, a sort of
every view in the range, which cost seconds per report on a year of traffic.

The ingest pipeline stitches each batch against the newest stored view of
each visitor on its site (``stitch_batch``); every writer goes through it, so
rows arrive stitched. ``restitch`` recomputes the whole history of visitors
whose rows lack the columns (a database upgraded from version 1) or whose
views were stored out of order; ``restitch_visitors`` does the same for
given visitors, after some of their views were deleted. Views without a
visitor id are sessions of their own.

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
    Integer,
    Select,
    String,
    TextualSelect,
    bindparam,
    inspect,
    or_,
    select,
    text,
    true,
    update,
)

from crumby.ingest import exits
from crumby.models import Visit, view_source
from crumby.store import spec_of

#: a view more than this many seconds after the visitor's previous one starts a new session
SESSION_TIMEOUT = 1800

#: visitors looked up or restitched per statement
CHUNK = 500


#: the session attributes every view carries, copied from the session's entry view
ENTRY_COLUMNS = (
    "entry_page",
    "entry_source",
    "entry_utm_source",
    "entry_utm_medium",
    "entry_utm_campaign",
    "entry_country",
    "entry_region",
    "entry_city",
    "entry_browser",
    "entry_os",
    "entry_device",
    "entry_language",
)
#: the view's own column that each entry column after the first two copies
_COPIED = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "subdivision_1",
    "city",
    "browser",
    "platform",
    "device",
    "lang",
)
Entry = tuple[str | None, ...]


def entry_of(view: dict[str, Any]) -> Entry:
    """The session attributes a view gives its session when it is the entry (ENTRY_COLUMNS)."""
    source = view_source(view.get("referrer"), view.get("referrer_host"), view.get("doc_host"))
    return (view.get("doc_path"), source, *(view.get(name) for name in _COPIED))


class Last(NamedTuple):
    """A visitor's newest view: when it happened, its session's start, its place in it,
    its id when it is a stored view, and the session's attributes (ENTRY_COLUMNS)."""

    datetime: dt.datetime
    start: dt.datetime
    seq: int
    id: int | None = None
    entry: Entry | None = None


def follow(last: Last | None, when: dt.datetime, entry: Entry | None = None) -> tuple[Last, float]:
    """Where a view at ``when`` stands after the visitor's ``last`` view, and the gap before it.

    ``entry`` is the view's own session attributes, which it keeps when it
    starts a session; a view that continues one takes the session's. A view
    that arrives out of order (stored by another process a moment later)
    continues the session with a gap of 0 rather than a negative one.
    """
    if last is not None:
        gap = (when - last.datetime).total_seconds()
        if gap <= SESSION_TIMEOUT:
            newest = when if when > last.datetime else last.datetime
            return Last(newest, last.start, last.seq + 1, entry=last.entry), round(max(gap, 0.0), 3)
    return Last(when, when, 1, entry=entry), 0.0


#: how many views per visitor (on average over a chunk) the first, cheap lookup reads before
#: the lookup falls back to one probe per visitor
VIEWS_PER_VISITOR = 8
#: how many visitors a probe statement is built for; a chunk is padded up to the next size,
#: so that a process builds at most this many statements (each database's prepared-statement
#: cache then keeps them too)
PROBE_SIZES = (1, 4, 16, 64, 200, CHUNK)
#: up to this many visitors (a live batch of hits) are probed at once: one statement that
#: reads one index entry per visitor, where the cheap lookup reads up to
#: ``VIEWS_PER_VISITOR`` rows each, and a second statement for visitors with many views
PROBE_FIRST = 16

_ENTRY_SQL = ", ".join(ENTRY_COLUMNS)
_PROBE = (
    f"SELECT cid, datetime, session_start, session_seq, id, {_ENTRY_SQL} FROM ("
    "SELECT v.cid, v.datetime, v.session_start, v.session_seq, v.id, "
    + ", ".join(f"v.{name}" for name in ENTRY_COLUMNS)
    + " FROM visits v "
    "WHERE v.site_id = :site_id AND v.cid = :cid{n} AND v.datetime >= :since "
    "AND v.session_seq IS NOT NULL ORDER BY v.datetime DESC, v.id DESC LIMIT 1) p{n}"
)


@functools.lru_cache(maxsize=1)
def _recent_views_statement() -> Select:
    """Up to ``:cap`` views of some visitors (``:cids``) on a site since ``:since``.

    ``datetime >= :since`` (only a view of the last 30 minutes can continue a
    session) keeps it to each visitor's last few views, read off the (site_id,
    cid, datetime, id) index: one cheap statement, compiled once, for the
    usual batch.
    """
    visits = Visit.__table__
    return (
        select(
            visits.c.cid,
            visits.c.datetime,
            visits.c.id,
            visits.c.session_start,
            visits.c.session_seq,
            *(visits.c[name] for name in ENTRY_COLUMNS),
        )
        .where(
            visits.c.site_id == bindparam("site_id"),
            visits.c.cid.in_(bindparam("cids", expanding=True)),
            visits.c.datetime >= bindparam("since", type_=DateTime()),
            visits.c.session_seq.is_not(None),
        )
        .limit(bindparam("cap", type_=Integer()))
    )


@functools.lru_cache(maxsize=len(PROBE_SIZES))
def _newest_views_statement(count: int) -> TextualSelect:
    """The lookup of ``count`` visitors' newest views on a site since ``:since``, built once.

    A ``UNION ALL`` of ``WHERE site_id = ? AND cid = ? ORDER BY datetime DESC,
    id DESC LIMIT 1`` probes runs on every database and reads one entry of the
    (site_id, cid, datetime, id) index per visitor, however many views they
    have (a load test, a crawler with a browser's User-Agent), where the
    ``IN`` lookup would read all of them. ``datetime >= :since`` bounds the
    work where a planner without table statistics reads the datetime index
    instead. It is plain SQL text: built from Core constructs, a statement of
    hundreds of subqueries cost SQLAlchemy seconds to compile and tens of
    milliseconds per execution for its cache key.
    """
    sql = " UNION ALL ".join(_PROBE.format(n=n) for n in range(count))
    return (
        text(sql)
        .bindparams(bindparam("since", type_=DateTime()))
        .columns(
            cid=String(),
            datetime=DateTime(),
            session_start=DateTime(),
            session_seq=Integer(),
            id=Integer(),
            **{name: String() for name in ENTRY_COLUMNS},
        )
    )


def newest_views(
    connection: Connection, site_id: int, cids: Iterable[str | None], since: dt.datetime
) -> dict[str, Last]:
    """Each visitor's newest stitched view on a site at or after ``since`` (ties: newest id).

    A live batch (up to ``PROBE_FIRST`` visitors) is probed at once. Larger
    chunks (imports) first read their recent views with one ``IN``; a chunk
    with more than ``VIEWS_PER_VISITOR`` views a visitor on average (someone
    viewing page after page, within the last half hour) is looked up again
    with one probe per visitor, whose cost does not grow with their views.
    """
    found: dict[str, Last] = {}
    wanted = sorted({cid for cid in cids if cid is not None})
    for begin in range(0, len(wanted), CHUNK):
        chunk = wanted[begin : begin + CHUNK]
        if len(chunk) <= PROBE_FIRST:
            _probe(connection, site_id, chunk, since, found)
            continue
        cap = VIEWS_PER_VISITOR * len(chunk)
        rows = connection.execute(
            _recent_views_statement(),
            {"cids": chunk, "since": since, "site_id": site_id, "cap": cap},
        ).all()
        if len(rows) < cap:  # all of them: the newest of each
            order: dict[str, tuple[dt.datetime, int]] = {}
            for cid, when, id_, start, seq, *entry in rows:
                if cid not in order or (when, id_) > order[cid]:
                    order[cid] = (when, id_)
                    found[cid] = Last(when, start, seq, id_, tuple(entry))
            continue
        _probe(connection, site_id, chunk, since, found)
    return found


def _probe(
    connection: Connection,
    site_id: int,
    chunk: list[str],
    since: dt.datetime,
    found: dict[str, Last],
) -> None:
    """Each visitor's newest view, one index probe per visitor, into ``found``."""
    size = next(size for size in PROBE_SIZES if size >= len(chunk))
    chunk = chunk + chunk[-1:] * (size - len(chunk))  # padding repeats a visitor: same answer
    params: dict[str, Any] = {f"cid{n}": cid for n, cid in enumerate(chunk)}
    params["since"] = since
    params["site_id"] = site_id
    for cid, when, start, seq, id_, *entry in connection.execute(
        _newest_views_statement(size), params
    ):
        found[cid] = Last(when, start, seq, id_, tuple(entry))


def stitch_batch(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Fill the session columns of new visit rows (in place), before they are inserted.

    ``connection`` must see the stored visits and every row must have its
    ``site_id``; rows are taken in time order, so several views of one
    visitor in the same batch chain correctly. The view each row continues
    gets its ``next_gap``: a row of the batch in place, a stored view by an
    update in this same transaction.
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
    # each visitor's latest view so far: a stored view's id, then this batch's rows
    previous: dict[str, exits.Previous] = {cid: view.id for cid, view in last.items()}
    stored: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda row: row["datetime"]):
        cid = row.get("cid")
        current, gap = follow(last.get(cid) if cid is not None else None, row["datetime"])
        # a view's own session attributes matter only when it starts its session (or
        # continues one stored without them): worked out then, not for every view
        entry = current.entry
        if entry is None:
            entry = entry_of(row)
            if current.seq == 1:
                current = current._replace(entry=entry)
        row["next_gap"] = None
        if cid is not None:
            last[cid] = current
            if current.seq > 1:
                exits.link(previous.get(cid), gap, stored)
            previous[cid] = row
        row["session_start"] = current.start
        row["session_seq"] = current.seq
        row["session_gap"] = gap
        row.update(zip(ENTRY_COLUMNS, entry, strict=True))
    exits.save(connection, stored)


def restitch(connection: Connection, everything: bool = False) -> int:
    """Re-stitch visitors with views lacking session columns (or all); returns rows changed.

    Each such visitor's whole history on each site is recomputed in time
    order, so views stored late or out of order end up where they belong.
    """
    visits = Visit.__table__
    spec_of(connection).analyze(connection, "visits")
    changed = _restitch_alone(connection, true() if everything else _unstitched())
    wanted = select(visits.c.site_id, visits.c.cid).where(visits.c.cid.is_not(None))
    if not everything:
        wanted = wanted.where(_unstitched())
    pairs = connection.execute(wanted.distinct()).all()
    # an upgrade re-stitches before the step that adds next_gap (which then fills it)
    relink = "next_gap" in {column["name"] for column in inspect(connection).get_columns("visits")}
    return changed + restitch_visitors(connection, pairs, relink)


#: what a view's own session attributes are read from (``entry_of``)
_VIEW_COLUMNS = ("doc_path", "referrer", "referrer_host", "doc_host", *_COPIED)


def _update_statement() -> Any:
    visits = Visit.__table__
    return (
        update(visits)
        .where(visits.c.id == bindparam("_id"))
        .values(
            session_start=bindparam("_start"),
            session_seq=bindparam("_seq"),
            session_gap=bindparam("_gap"),
            **{name: bindparam(f"_{name}") for name in ENTRY_COLUMNS},
        )
    )


def _update(id_: int, last: Last, gap: float) -> dict[str, Any]:
    values = {"_id": id_, "_start": last.start, "_seq": last.seq, "_gap": gap}
    values.update(zip((f"_{name}" for name in ENTRY_COLUMNS), last.entry or (), strict=True))
    return values


def _restitch_alone(connection: Connection, condition: ColumnElement[bool]) -> int:
    """Views without a visitor id (matching ``condition``) as sessions of their own, in chunks."""
    visits = Visit.__table__
    statement = _update_statement()
    changed, after = 0, None
    while True:
        query = select(visits.c.id, visits.c.datetime, *(visits.c[n] for n in _VIEW_COLUMNS))
        query = query.where(visits.c.cid.is_(None), condition)
        if after is not None:
            query = query.where(visits.c.id > after)
        rows = connection.execute(query.order_by(visits.c.id).limit(CHUNK)).all()
        if not rows:
            return changed
        after = rows[-1][0]
        updates = []
        for id_, when, *cells in rows:
            last, gap = follow(None, when, entry_of(dict(zip(_VIEW_COLUMNS, cells, strict=True))))
            updates.append(_update(id_, last, gap))
        connection.execute(statement, updates)
        changed += len(updates)


def restitch_visitors(
    connection: Connection, pairs: Iterable[tuple[int, str | None]], relink: bool = True
) -> int:
    """Re-stitch the whole history of each (site_id, cid) visitor given; returns rows changed.

    For deletions (``crumby prune``, ``crumby forget``): once some of a
    visitor's views are gone, the ones left are put back in order (the first
    one left of a session becomes its entry), without touching anyone else.
    Views without a visitor id are sessions of their own and need nothing.
    Each view's ``next_gap`` is recomputed too (``exits.relink``; not with
    ``relink`` false, for a table that has no such column yet); the count is
    of views whose session columns changed.
    """
    by_site: dict[int, set[str]] = {}
    for site_id, cid in pairs:
        if cid is not None:
            by_site.setdefault(site_id, set()).add(cid)
    statement = _update_statement()
    changed = 0
    for site_id, cid_set in sorted(by_site.items()):
        cids = sorted(cid_set)
        for begin in range(0, len(cids), CHUNK):
            updates = list(_restitch(connection, site_id, cids[begin : begin + CHUNK]))
            if updates:
                connection.execute(statement, updates)
                changed += len(updates)
            if relink:
                exits.relink(connection, site_id, cids[begin : begin + CHUNK])
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
            *(visits.c[name] for name in ENTRY_COLUMNS),
            *(visits.c[name] for name in _VIEW_COLUMNS),
        )
        .where(visits.c.site_id == site_id, visits.c.cid.in_(cids))
        .order_by(visits.c.cid, visits.c.datetime, visits.c.id)
    )
    width = len(ENTRY_COLUMNS)
    last: Last | None = None
    previous_cid = None
    for id_, cid, when, start, seq, gap, *cells in rows:
        if cid != previous_cid:
            last, previous_cid = None, cid
        stored, own = tuple(cells[:width]), dict(zip(_VIEW_COLUMNS, cells[width:], strict=True))
        last, new_gap = follow(last, when, entry_of(own))
        if (start, seq, gap, stored) != (last.start, last.seq, new_gap, last.entry):
            yield _update(id_, last, new_gap)
