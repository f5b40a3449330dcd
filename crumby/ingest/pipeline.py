"""The one way rows get into ``visits`` and ``events``: ordered steps over a batch.

Every writer (the hit endpoints through the group-commit writer, ``crumby
demo``, the benchmarks, the tests' seeding, and later log imports and app
events) hands rows to ``Pipeline.run`` inside the transaction that stores
them. Each step has one job, in this order:

1. ``drop_dnt``: with RESPECT_DNT, rows of hits that asked not to be tracked
   (``DNT: 1`` or ``Sec-GPC: 1``) go, under the reason ``dnt``;
2. ``derive``: what follows from the row itself (page host and path, the
   referrer's host);
3. ``resolve_sites``: the registered site of each row (contract section 8),
   dropping rows of no site under the reason ``unknown_site``;
4. ``anonymous_ids``: rows without ``cid`` get their visitor's anonymous id
   of the day on their site (``crumby.ingest.salts``);
5. ``skip_duplicates``: rows of log lines stored before (an ``import_key``
   hint already in ``import_keys``) are dropped under ``duplicate``; the
   others' keys are stored with them;
6. ``count_bots``: bots are stored flagged and counted under ``bot``;
7. ``stitch``: each visit's place in its visitor's session on its site, and
   the time until the next view (``next_gap``) of the view each one continues;
8. ``attribute_events``: each event takes the start and attributes of the session it
   falls in (``crumby.ingest.eventsessions``);
9. ``insert``: one ``executemany`` per table;
10. ``count_rollups``: the stored views are added to the rollups
    (``crumby.ingest.rollups``: visitor days and session days), the tables
    most reports read.

Adding a concern (aggregates, consent) adds a step, not an ``if`` in a writer.
Rows may carry hints that are not columns (``HINTS``); the pipeline reads and
removes them. Rows handed in are never changed: a batch retried after a
failure starts from the same input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.engine import Engine

from crumby import clock
from crumby.ingest.counters import Counters, counters_for
from crumby.ingest.eventsessions import attribute_batch
from crumby.ingest.rollups import count_batch
from crumby.ingest.salts import Salts, anonymous_id
from crumby.ingest.sessions import stitch_batch
from crumby.models import Event, ImportKey, Visit, url_host, url_path, utcnow
from crumby.sites import Directory
from crumby.store.base import insert_rows

VISITS: Table = Visit.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]
IMPORT_KEYS: Table = ImportKey.__table__  # type: ignore[assignment]
#: keys a row may carry that are not columns: the ``site`` hit parameter, for events
#: the page that sent them (the Referer header) when ``dl`` is missing, whether the
#: hit asked not to be tracked (``DNT: 1`` or ``Sec-GPC: 1``), ``site_only`` (true:
#: only ``site_hint`` names the site, as a Measurement Protocol ``tid`` does; a hint
#: that is no registered site drops the row), and for rows of log lines the line's
#: identity (``crumby.imports``), which ``skip_duplicates`` turns into its import key;
#: ``visitor_hint`` (address, User-Agent) of a hit without ``cid``, for ``anonymous_ids``
HINTS = ("site_hint", "page_hint", "dnt_hint", "site_only", "import_key", "visitor_hint")
#: import keys looked up per statement
KEY_CHUNK = 500
EPOCH = dt.datetime(1970, 1, 1)
#: rows per transaction for bulk writers (``store``)
CHUNK = 1000


@dataclass
class Batch:
    """The rows of one transaction, and what happened to them."""

    connection: Connection
    visits: list[dict[str, Any]]
    events: list[dict[str, Any]]
    hints: dict[int, dict[str, Any]] = field(default_factory=dict)
    stored: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    #: salts of anonymous ids read or made in this transaction (``crumby.ingest.salts``)
    salts: dict[dt.date, bytes] = field(default_factory=dict)

    def rows(self) -> Iterable[tuple[Table, dict[str, Any]]]:
        """Every row with its table."""
        for row in self.visits:
            yield VISITS, row
        for row in self.events:
            yield EVENTS, row


Step = Callable[["Pipeline", Batch], None]


def drop_dnt(pipeline: Pipeline, batch: Batch) -> None:
    """Under RESPECT_DNT, rows whose hit sent Do Not Track or Global Privacy Control go."""
    if not pipeline.respect_dnt:
        return
    for name in ("visits", "events"):
        kept = []
        for row in getattr(batch, name):
            if batch.hints.get(id(row), {}).get("dnt_hint"):
                batch.dropped["dnt"] += 1
            else:
                kept.append(row)
        setattr(batch, name, kept)


def derive(pipeline: Pipeline, batch: Batch) -> None:
    """Page host and path and referrer host of each visit, and each event's page path."""
    for row in batch.events:
        if row.get("doc_path") is None:
            row["doc_path"] = url_path(row.get("doc_uri"))
    for row in batch.visits:
        uri = row.get("doc_uri")
        if row.get("doc_host") is None:
            row["doc_host"] = url_host(uri)
        if row.get("doc_path") is None:
            row["doc_path"] = url_path(uri)
        if row.get("referrer_host") is None:
            row["referrer_host"] = url_host(row.get("referrer"))


def resolve_sites(pipeline: Pipeline, batch: Batch) -> None:
    """The site of each row: its ``site`` hint if registered, else its page's host.

    With the ``site_only`` hint, the ``site`` hint alone.
    """
    for name in ("visits", "events"):
        kept = []
        for row in getattr(batch, name):
            if row.get("site_id") is None:
                hints = batch.hints.get(id(row), {})
                hosts: tuple[str | None, ...] = (
                    hints.get("site_hint"),
                    row.get("doc_host") or url_host(row.get("doc_uri")),
                    url_host(hints.get("page_hint")),
                )
                if hints.get("site_only"):
                    hosts = hosts[:1]
                site = pipeline.directory.resolve(batch.connection, hosts)
                if site is None:
                    batch.dropped["unknown_site"] += 1
                    continue
                row["site_id"] = site.id
            kept.append(row)
        setattr(batch, name, kept)


def anonymous_ids(pipeline: Pipeline, batch: Batch) -> None:
    """Rows without ``cid`` get their visitor's anonymous id of the day on their site."""
    for _table, row in batch.rows():
        if row.get("cid") is None:
            visitor = batch.hints.get(id(row), {}).get("visitor_hint")
            if visitor is not None:
                salt = pipeline.salts.salt(batch.connection, row["datetime"].date(), batch.salts)
                row["cid"] = anonymous_id(salt, row["site_id"], *visitor)


def import_key(site_id: int, when: dt.datetime, line: bytes) -> bytes:
    """The stored key of a log line's row: its time (4 bytes) and a 12-byte hash of site and line.

    ``when`` is naive UTC; times before 1970 (none in a real log) count as 1970.
    """
    seconds = max(int((when - EPOCH).total_seconds()), 0) & 0xFFFFFFFF
    digest = hashlib.blake2b(line, digest_size=12, key=site_id.to_bytes(8, "big")).digest()
    return seconds.to_bytes(4, "big") + digest


def stored_keys(connection: Connection, keys: Iterable[bytes]) -> set[bytes]:
    """Which of ``keys`` are in ``import_keys``, by their unique index.

    Keys lead with their line's time, so lines newer than every stored one
    (a log read in time order, syslog's live lines) need only one look at
    the index's last entry instead of a lookup each.
    """
    wanted = list(keys)
    if not wanted:
        return set()
    # ORDER BY ... LIMIT 1 rather than MAX(): PostgreSQL has no MAX of bytea
    newest = connection.execute(
        select(IMPORT_KEYS.c.line_key).order_by(IMPORT_KEYS.c.line_key.desc()).limit(1)
    ).scalar()
    if newest is None or min(wanted) > bytes(newest):
        return set()
    statement = select(IMPORT_KEYS.c.line_key).where(
        IMPORT_KEYS.c.line_key.in_(bindparam("keys", expanding=True))
    )
    found: set[bytes] = set()
    for begin in range(0, len(wanted), KEY_CHUNK):
        chunk = wanted[begin : begin + KEY_CHUNK]
        found.update(bytes(key) for (key,) in connection.execute(statement, {"keys": chunk}))
    return found


def skip_duplicates(pipeline: Pipeline, batch: Batch) -> None:
    """Rows of log lines stored before are dropped as ``duplicate``; the rest claim their keys.

    The keys are inserted in the transaction that stores the rows, so a
    line's key exists exactly when its row does. Two imports of the same lines
    at once: the second one's insert of a key fails on the unique index (after
    waiting for the first to commit), and its batch, retried, finds the keys.
    """
    for name in ("visits", "events"):
        rows = getattr(batch, name)
        keys: dict[int, bytes] = {}
        for row in rows:
            line = batch.hints.get(id(row), {}).get("import_key")
            if line is not None:
                keys[id(row)] = import_key(row["site_id"], row["datetime"], line)
        if not keys:
            continue
        seen = stored_keys(batch.connection, keys.values())
        kept, claimed = [], []
        for row in rows:
            key = keys.get(id(row))
            if key is not None:
                if key in seen:
                    batch.dropped["duplicate"] += 1
                    continue
                seen.add(key)  # the same line twice in one batch: once
                claimed.append({"line_key": key, "site_id": row["site_id"]})
            kept.append(row)
        setattr(batch, name, kept)
        if claimed:
            insert_rows(batch.connection, IMPORT_KEYS, claimed)


def count_bots(pipeline: Pipeline, batch: Batch) -> None:
    """Bots are stored flagged (reports leave them out) and counted under ``bot``."""
    for _table, row in batch.rows():
        if row.get("is_bot"):
            batch.dropped["bot"] += 1


def stitch(pipeline: Pipeline, batch: Batch) -> None:
    """Sessions, read against the stored views in this same transaction."""
    if batch.visits:
        stitch_batch(batch.connection, batch.visits)


def attribute_events(pipeline: Pipeline, batch: Batch) -> None:
    """Events carry their session's attributes, read against the views stitched before."""
    if batch.events:
        attribute_batch(batch.connection, batch.events, batch.visits)


def insert(pipeline: Pipeline, batch: Batch) -> None:
    """One executemany per table (the driver's own, ``insert_rows``)."""
    for table, rows in ((VISITS, batch.visits), (EVENTS, batch.events)):
        if rows:
            insert_rows(batch.connection, table, _without_empty_columns(table, rows))
            batch.stored[table.name] += len(rows)


def count_rollups(pipeline: Pipeline, batch: Batch) -> None:
    """The batch's views are added to the rollups, in its transaction."""
    count_batch(batch.connection, batch.visits)


STEPS: tuple[Step, ...] = (
    drop_dnt,
    derive,
    resolve_sites,
    anonymous_ids,
    skip_duplicates,
    count_bots,
    stitch,
    attribute_events,
    insert,
    count_rollups,
)


class Pipeline:
    """An app's pipeline: the steps, the site directory and the counters they share.

    ``respect_dnt`` is the app's RESPECT_DNT, read once when the pipeline is made.
    """

    def __init__(
        self,
        engine: Engine,
        counters: Counters,
        steps: Sequence[Step] = STEPS,
        *,
        respect_dnt: bool = False,
        salts: Salts | None = None,
    ) -> None:
        self.engine = engine
        self.counters = counters
        self.steps = tuple(steps)
        self.directory = Directory(engine)
        self.respect_dnt = respect_dnt
        self.salts = salts or Salts(1, lambda: utcnow().date())

    def run(self, connection: Connection, rows: Iterable[tuple[Table, dict[str, Any]]]) -> Batch:
        """Run every step over copies of ``rows`` in the caller's transaction."""
        batch = Batch(connection, [], [])
        for table, row in rows:
            copy = dict(row)
            hints = None
            for key in HINTS:
                if key in copy:
                    if hints is None:
                        hints = batch.hints[id(copy)] = {}
                    hints[key] = copy.pop(key)
            (batch.visits if table is VISITS else batch.events).append(copy)
        for step in self.steps:
            step(self, batch)
        return batch

    def counted(self, batch: Batch) -> None:
        """Record a committed batch's outcome (and keep the salts it committed)."""
        self.counters.add(batch.stored, batch.dropped)
        self.salts.committed(batch.salts)

    def store(
        self,
        visits: Iterable[dict[str, Any]] = (),
        events: Iterable[dict[str, Any]] = (),
        chunk: int = CHUNK,
    ) -> tuple[int, int]:
        """Store many rows in time order, ``chunk`` per transaction; returns rows stored.

        For bulk writers (the demo, benchmarks, tests): rows are sorted by
        time first, so sessions stitch as if the hits had arrived live.
        """
        items = [(VISITS, row) for row in visits] + [(EVENTS, row) for row in events]
        items.sort(key=lambda item: item[1]["datetime"])
        stored: Counter[str] = Counter()
        for begin in range(0, len(items), chunk):
            with self.engine.begin() as connection:
                batch = self.run(connection, items[begin : begin + chunk])
            self.counted(batch)
            stored.update(batch.stored)
        return stored["visits"], stored["events"]

    def store_all(
        self,
        visits: Iterable[dict[str, Any]] = (),
        events: Iterable[dict[str, Any]] = (),
    ) -> tuple[int, int]:
        """Store every row in one transaction, or none of them; returns rows stored.

        For writers that promise all-or-nothing (``POST /api/events``): any
        failure rolls the whole transaction back and propagates, and nothing
        is counted. Rows are sorted by time first, as in ``store``.
        """
        items = [(VISITS, row) for row in visits] + [(EVENTS, row) for row in events]
        items.sort(key=lambda item: item[1]["datetime"])
        with self.engine.begin() as connection:
            batch = self.run(connection, items)
        self.counted(batch)
        return batch.stored["visits"], batch.stored["events"]


def pipeline_for(app: Flask, engine: Engine) -> Pipeline:
    """The app's pipeline for an engine, created on first use with the app's settings."""
    pipeline = app.extensions.get("crumby.pipeline")
    if pipeline is None or pipeline.engine is not engine:
        pipeline = app.extensions["crumby.pipeline"] = Pipeline(
            engine,
            counters_for(app),
            respect_dnt=bool(app.config.get("RESPECT_DNT")),
            salts=Salts(
                int(app.config.get("VISITOR_SALT_DAYS") or 1), lambda: clock.now(app).date()
            ),
        )
    return pipeline


def store(
    app: Flask,
    visits: Iterable[dict[str, Any]] = (),
    events: Iterable[dict[str, Any]] = (),
) -> tuple[int, int]:
    """Store rows through the app's pipeline (inside an app context); returns rows stored."""
    return _app_pipeline(app).store(visits, events)


def store_all(
    app: Flask,
    visits: Iterable[dict[str, Any]] = (),
    events: Iterable[dict[str, Any]] = (),
) -> tuple[int, int]:
    """Store rows through the app's pipeline in one transaction, all or none (``store_all``)."""
    return _app_pipeline(app).store_all(visits, events)


def _app_pipeline(app: Flask) -> Pipeline:
    from crumby.database import ensure_schema
    from crumby.extensions import db

    ensure_schema(app)
    with app.app_context():
        engine = db.engine
    return pipeline_for(app, engine)


def _without_empty_columns(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leave out the columns empty in every row, rather than have the driver quote NULLs.

    Most of a visit's 40 columns are empty (no geo, no campaign). The rows
    (the pipeline's own copies) are changed in place, and only where they
    differ from the batch's columns: an ``executemany`` needs one set of keys.
    """
    first = rows[0]
    if all(row.keys() == first.keys() for row in rows):
        # the usual batch (a log import's, a writer's): the same keys in every row, so only
        # the first row's empty columns can be empty everywhere; checked row by row, they
        # are soon few
        empty = [key for key, value in first.items() if value is None]
        for row in rows:
            if not empty:
                return rows
            empty = [key for key in empty if row[key] is None]
        for row in rows:
            for key in empty:
                del row[key]
        return rows
    keys = {key for row in rows for key, value in row.items() if value is not None}
    defaults = None
    for row in rows:
        if row.keys() != keys:
            for key in [key for key in row if key not in keys]:
                del row[key]
            missing = keys - row.keys()
            if missing:
                # a key some rows lack takes the column's own default, as a single insert would
                defaults = defaults if defaults is not None else _defaults(table)
                for key in missing:
                    row[key] = defaults.get(key)
    return rows


def _defaults(table: Table) -> dict[str, Any]:
    """The plain (non-callable) Python-side defaults of a table's columns."""
    return {
        column.name: column.default.arg
        for column in table.columns
        if column.default is not None and column.default.is_scalar
    }
