"""Each view's time until the next view of its session: time on page, and exits.

A view's ``next_gap`` is the ``session_gap`` of the view after it in the same
session (the seconds the visitor spent on it before the next page), and NULL
for the session's last view, its *exit*. Reports then count exits as views
with ``next_gap IS NULL`` and time on page as ``AVG(next_gap)``: plain
aggregates over the datetime index, with no look at any other row. Finding a
session's last view when a report runs instead takes a self-join or a window
function over every view in the range.

The value changes once: when the session's next view is stitched
(``crumby.ingest.sessions``), it fills in its predecessor's ``next_gap``,
in the batch (a row not yet inserted) or by id (a stored view). Views
without a visitor id are sessions of their own and keep NULL. After
``restitch``, ``relink`` puts the values right for the visitors re-stitched.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Update, bindparam, select, update

from crumby.models import Visit

#: the previous view of a session: a row of the batch being stored, or a stored view's id
Previous = dict[str, Any] | int | None


def link(previous: Previous, gap: float, stored: list[dict[str, Any]]) -> None:
    """Give the view before a continuing one its ``next_gap`` (``gap``, the new view's).

    A row of the same batch is filled in place; a stored view's update is
    added to ``stored`` for ``save``.
    """
    if isinstance(previous, dict):
        previous["next_gap"] = gap
    elif previous is not None:
        stored.append({"_id": previous, "_next": gap})


@functools.lru_cache(maxsize=1)
def _by_id() -> Update:
    visits = Visit.__table__
    return update(visits).where(visits.c.id == bindparam("_id")).values(next_gap=bindparam("_next"))


def save(connection: Connection, stored: list[dict[str, Any]]) -> None:
    """Write the stored views' new ``next_gap`` values (one executemany, by primary key)."""
    if stored:
        connection.execute(_by_id(), stored)


def relink(connection: Connection, site_id: int, cids: Sequence[str]) -> int:
    """Recompute ``next_gap`` of these visitors' views on a site; returns rows changed.

    A view's next is the view of the same session (same ``session_start``)
    whose ``session_seq`` is one more; the last view of each session gets
    NULL. Called after the visitors' sessions were re-stitched.
    """
    visits = Visit.__table__
    rows = connection.execute(
        select(
            visits.c.id,
            visits.c.cid,
            visits.c.session_start,
            visits.c.session_seq,
            visits.c.session_gap,
            visits.c.next_gap,
        )
        .where(visits.c.site_id == site_id, visits.c.cid.in_(list(cids)))
        .order_by(visits.c.id)
    ).all()
    gaps = {(cid, start, seq): gap for _id, cid, start, seq, gap, _next in rows}
    changes = []
    for id_, cid, start, seq, _gap, stored_next in rows:
        next_gap = gaps.get((cid, start, seq + 1)) if seq is not None else None
        if next_gap != stored_next:
            changes.append({"_id": id_, "_next": next_gap})
    save(connection, changes)
    return len(changes)


def relink_all(connection: Connection, chunk: int = 500) -> int:
    """``relink`` every visitor on every site (the upgrade that adds ``next_gap``)."""
    visits = Visit.__table__
    pairs = connection.execute(
        select(visits.c.site_id, visits.c.cid)
        .where(visits.c.cid.is_not(None))
        .distinct()
        .order_by(visits.c.site_id, visits.c.cid)
    ).all()
    by_site: dict[int, list[str]] = {}
    for site_id, cid in pairs:
        by_site.setdefault(site_id, []).append(cid)
    changed = 0
    for site_id, cids in by_site.items():
        for begin in range(0, len(cids), chunk):
            changed += relink(connection, site_id, cids[begin : begin + chunk])
    return changed
