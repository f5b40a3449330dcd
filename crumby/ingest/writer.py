"""Group commit: one writer thread per process stores hits in batches.

A commit per request spends most of its time waiting for the database to
make the transaction durable, and SQLite lets only one writer in at a time.
Instead, request threads hand their row to this process's writer and wait;
the writer takes everything queued so far (up to ``BATCH_MAX`` rows), runs
it through the ingest pipeline (``crumby.ingest.pipeline``) in one
transaction, commits, and only then wakes the waiting requests. Under load
a batch holds as many rows as there are requests in flight, so the cost of
a commit is shared; with no load a batch is a single row and nothing is slower than before.

No acknowledged hit is lost: a request answers 204 only after the commit of
the batch that holds its row. The opposite holds too: a request that gives up
(after HIT_WAIT_SECONDS, and answers 503) withdraws its row, so that it is
never stored afterwards. A row is queued, then claimed by a batch, then
committing; a request giving up while its row is queued or claimed takes it
back (a batch that already read it rolls back and runs again without it),
and one whose row is already committing waits the moment it takes to learn
the outcome, so that the answer is always the truth. A failed batch is retried once on a fresh
connection; if the database refuses it again for anything but being locked
or down, its rows are retried one by one so a single bad row cannot take its
neighbours down. The requests whose row could not be stored answer 503.

The writer lives in ``app.extensions["crumby.writer"]``; it starts on the
first hit, is restarted after a fork (gunicorn ``--preload``) and exits after
``IDLE_SECONDS`` without hits so idle apps (and test apps) hold no thread.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Table
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from crumby.database import describe
from crumby.ingest.pipeline import Pipeline, pipeline_for
from crumby.ingest.turns import WriteTurns
from crumby.operations.metrics import WRITER_BATCH, WRITER_QUEUE
from crumby.store import bounded

BATCH_MAX = 500
IDLE_SECONDS = 10.0
#: how long a request waits for its row by default (HIT_WAIT_SECONDS) before answering 503
WAIT_SECONDS = 4.0

# where a row stands (``Pending.state``); the writer's ``claims`` lock guards the changes
QUEUED, CLAIMED, COMMITTING, WITHDRAWN = range(4)


class StoreError(Exception):
    """The hit could not be stored; the message is one line, without SQL."""


class Pending:
    """One row waiting to be committed, and the request thread waiting for it.

    The request thread blocks on a plain lock that the writer releases: one C
    call, where ``threading.Event.set`` runs a Condition's Python code while
    holding the GIL, which under load was a fifth of the writer's time.
    """

    __slots__ = ("table", "row", "done", "error", "state")

    def __init__(self, table: Table, row: dict[str, Any]) -> None:
        self.table = table
        self.row = row
        self.done = threading.Lock()
        self.done.acquire()
        self.error: str | None = None
        self.state = QUEUED

    def finish(self, error: str | None = None) -> None:
        """Wake the request thread."""
        self.error = error
        self.done.release()

    def wait(self, timeout: float) -> bool:
        """Block until the writer is done with this row; False on timeout (-1: no limit)."""
        return self.done.acquire(timeout=timeout)


#: put in the queue by ``Writer.stop``: leave once the queue is empty
_STOP: Any = object()


class _Withdrawn(Exception):
    """A row of the batch was taken back by its request: roll back, run without it."""


class Writer:
    """The per-process, per-app writer thread and its queue."""

    def __init__(self, app: Flask, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.queue: queue.SimpleQueue[Pending] = queue.SimpleQueue()
        self.lock = threading.Lock()
        #: guards ``Pending.state``: a request taking its row back, a batch claiming it
        self.claims = threading.Lock()
        self.wait_seconds = float(app.config.get("HIT_WAIT_SECONDS") or WAIT_SECONDS)
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()
        self.pipeline: Pipeline = pipeline_for(app, engine)
        self.turns = WriteTurns.for_engine(engine)
        self.connection: Connection | None = None

    def store(self, table: Table, row: dict[str, Any]) -> None:
        """Queue one row and return once it is committed; StoreError if it was not."""
        self.store_many([(table, row)])

    def store_many(self, rows: list[tuple[Table, dict[str, Any]]]) -> None:
        """Queue rows together and return once all are committed; StoreError if one was not.

        The rows usually share one transaction, but may be split between two
        batches: this is not all-or-nothing (``Pipeline.store_all`` is).
        """
        items = [Pending(table, row) for table, row in rows]
        if not items:
            return
        # Queueing and the liveness check happen under the lock the idle writer takes
        # to exit, so a row can never land in a queue whose writer just left.
        with self.lock:
            if self.pid != os.getpid():  # forked: the parent's thread and queue are not ours
                self.queue = queue.SimpleQueue()
                self.pid = os.getpid()
                self.thread = None
                self.turns.forget()  # the parent's open file would share its lock
                self.connection = None  # nor may a child use the parent's socket
            for item in items:
                self.queue.put(item)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="crumby-hit-writer", daemon=True
                )
                self.thread.start()
        deadline = time.monotonic() + self.wait_seconds
        for item in items:
            if not item.wait(max(0.0, deadline - time.monotonic())):
                if self._withdraw(items):
                    raise StoreError("timed out waiting for the database")
                item.wait(-1)  # committing: the outcome is a moment away
        for item in items:
            if item.error is not None:
                raise StoreError(item.error)

    def _withdraw(self, items: list[Pending]) -> bool:
        """Take back the rows not yet committing; False if one is committing (then none)."""
        with self.claims:
            if any(item.state == COMMITTING for item in items):
                return False
            for item in items:
                item.state = WITHDRAWN
            return True

    def stop(self, timeout: float = 5.0) -> None:
        """Let the thread finish what is queued and leave now, not after its idle time.

        For whoever retires the app (a test removing its database server): an
        idle writer would otherwise still hold a connection to it for a while.
        """
        with self.lock:
            thread = self.thread
            if thread is None or self.pid != os.getpid():
                return
            self.queue.put(_STOP)
        thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                first = _STOP
            if first is _STOP:
                with self.lock:
                    if self.queue.empty():
                        self.thread = None
                        self._close_connection()
                        WRITER_QUEUE.set(0)
                        return
                continue
            # On SQLite the batch is gathered once this process's turn to write has come:
            # the hits that arrived while it waited for the other processes join it, so
            # each turn (a transaction, a commit) is shared by as many hits as possible.
            with self.turns.turn():
                batch = [first]
                stopping = False
                while len(batch) < BATCH_MAX:
                    try:
                        item = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                    else:
                        batch.append(item)
                if stopping:  # after this batch
                    self.queue.put(_STOP)
                with self.claims:
                    batch = [item for item in batch if item.state == QUEUED]
                    for item in batch:
                        item.state = CLAIMED
                # metrics per batch, never per hit: what waited, and how many commit together
                WRITER_QUEUE.set(len(batch) + self.queue.qsize())
                WRITER_BATCH.observe(len(batch))
                outcome = self._commit(batch)
            # woken once this process's turn is over: the other processes write meanwhile
            for item, error in outcome:
                item.finish(error)
            WRITER_QUEUE.set(self.queue.qsize())

    def _commit(self, batch: list[Pending]) -> list[tuple[Pending, str | None]]:
        """Store the batch; each row with None (stored) or the error its request answers."""
        # The second attempt runs on a fresh connection: one the server dropped
        # costs no hit. A database that stays locked or down fails the batch at
        # once; only a batch refused for another reason (a row the database will
        # not take) is split, so that that row fails alone.
        attempt = 1
        while batch:
            try:
                self._insert(batch)
            except _Withdrawn:
                batch = self._still_wanted(batch)
                continue
            except Exception as exc:
                if attempt == 1:
                    attempt = 2
                    batch = self._still_wanted(batch)
                    continue
                if len(batch) == 1 or isinstance(exc, OperationalError):
                    return [(item, self._failure(item, exc)) for item in batch]
                break
            return [(item, None) for item in batch]
        outcome = []
        for item in batch:
            try:
                self._insert([item])
            except _Withdrawn:
                continue
            except Exception as exc:
                outcome.append((item, self._failure(item, exc)))
            else:
                outcome.append((item, None))
        return outcome

    def _still_wanted(self, batch: list[Pending]) -> list[Pending]:
        """The rows whose requests still wait for them (the others were taken back)."""
        with self.claims:
            return [item for item in batch if item.state != WITHDRAWN]

    def _insert(self, batch: list[Pending]) -> None:
        connection = self._connection()
        try:
            # The pipeline reads the visitors' newest views in the transaction that
            # stores the new ones (on SQLite, in this process's turn to write).
            with connection.begin():
                # a hung database cuts the batch short (then its requests answer 503); the
                # commit itself is waited for, so that its outcome is what they answer
                with bounded(connection, self.wait_seconds):
                    done = self.pipeline.run(connection, ((i.table, i.row) for i in batch))
                # the last moment a request may take its row back: after it, the commit
                with self.claims:
                    if any(item.state == WITHDRAWN for item in batch):
                        raise _Withdrawn
                    for item in batch:
                        item.state = COMMITTING
        except _Withdrawn:
            raise
        except Exception:
            with self.claims:  # not stored: their requests may take them back again
                for item in batch:
                    if item.state == COMMITTING:
                        item.state = CLAIMED
            self._close_connection()  # it may be broken; the retry gets a new one
            raise
        self.pipeline.counted(done)

    def _connection(self) -> Connection:
        """The writer's own connection, kept while hits keep coming.

        Checking one out of the pool per batch would cost a server round trip
        (``pool_pre_ping``) per batch, and the writer is serial: every round
        trip is time the next batch waits.
        """
        if self.connection is None:
            self.connection = self.engine.connect()
        return self.connection

    def _close_connection(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # a dead connection cannot be closed cleanly; drop it
                pass

    def _failure(self, item: Pending, exc: Exception) -> str:
        """Log why a row could not be stored; the answer its request gives."""
        message = describe(exc) if isinstance(exc, SQLAlchemyError) else str(exc)[:300]
        self.app.logger.error("could not store a hit in %s: %s", item.table.name, message)
        return "database unavailable"


def stop_writer(app: Flask) -> None:
    """Stop the app's writer thread, if it has one, once its queue is empty."""
    writer = app.extensions.get("crumby.writer")
    if writer is not None:
        writer.stop()


def writer_for(app: Flask, engine: Engine) -> Writer:
    """The app's writer, created on first use."""
    writer = app.extensions.get("crumby.writer")
    if writer is None or writer.engine is not engine:
        with _CREATE_LOCK:
            writer = app.extensions.get("crumby.writer")
            if writer is None or writer.engine is not engine:
                writer = app.extensions["crumby.writer"] = Writer(app, engine)
    return writer


_CREATE_LOCK = threading.Lock()
