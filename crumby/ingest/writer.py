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
the batch that holds its row. A failed batch is retried once on a fresh
connection; if the database refuses it again for anything but being locked
or down, its rows are retried one by one so a single bad row cannot take its
neighbours down. The requests whose row could not be stored answer 503.

The writer lives in ``app.extensions["crumby.writer"]``; it starts on the
first hit, is restarted after a fork (gunicorn ``--preload``) and exits after
``IDLE_SECONDS`` without hits so idle apps (and test apps) hold no thread.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Table
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from crumby.database import describe
from crumby.ingest.pipeline import Pipeline, pipeline_for
from crumby.operations.metrics import WRITER_BATCH, WRITER_QUEUE
from crumby.store import spec_of

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

BATCH_MAX = 500
IDLE_SECONDS = 10.0
#: how long a request waits for its batch before answering 503
WAIT_SECONDS = 30.0


class StoreError(Exception):
    """The hit could not be stored; the message is one line, without SQL."""


class Pending:
    """One row waiting to be committed, and the request thread waiting for it.

    The request thread blocks on a plain lock that the writer releases: one C
    call, where ``threading.Event.set`` runs a Condition's Python code while
    holding the GIL, which under load was a fifth of the writer's time.
    """

    __slots__ = ("table", "row", "done", "error")

    def __init__(self, table: Table, row: dict[str, Any]) -> None:
        self.table = table
        self.row = row
        self.done = threading.Lock()
        self.done.acquire()
        self.error: str | None = None

    def finish(self, error: str | None = None) -> None:
        """Wake the request thread."""
        self.error = error
        self.done.release()

    def wait(self, timeout: float) -> bool:
        """Block until the writer is done with this row; False on timeout."""
        return self.done.acquire(timeout=timeout)


class Writer:
    """The per-process, per-app writer thread and its queue."""

    def __init__(self, app: Flask, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.queue: queue.SimpleQueue[Pending] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()
        self.pipeline: Pipeline = pipeline_for(app, engine)
        self.lock_path = spec_of(engine).writer_lock_path(engine)
        self.lock_file: Any = None
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
                self.lock_file = None  # the parent's open file would share its lock
                self.connection = None  # nor may a child use the parent's socket
            for item in items:
                self.queue.put(item)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="crumby-hit-writer", daemon=True
                )
                self.thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        for item in items:
            if not item.wait(max(0.0, deadline - time.monotonic())):
                raise StoreError("timed out waiting for the database")
        for item in items:
            if item.error is not None:
                raise StoreError(item.error)

    def _run(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self.lock:
                    if self.queue.empty():
                        self.thread = None
                        self._close_connection()
                        WRITER_QUEUE.set(0)
                        return
                continue
            batch = [first]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            # metrics per batch, never per hit: what waited, and how many commit together
            WRITER_QUEUE.set(len(batch) + self.queue.qsize())
            WRITER_BATCH.observe(len(batch))
            self._commit(batch)
            WRITER_QUEUE.set(self.queue.qsize())

    def _commit(self, batch: list[Pending]) -> None:
        # The second attempt runs on a fresh connection: one the server dropped
        # costs no hit. A database that stays locked or down fails the batch at
        # once; only a batch refused for another reason (a row the database will
        # not take) is split, so that that row fails alone.
        for attempt in (1, 2):
            try:
                self._insert(batch)
            except Exception as exc:
                if attempt == 1:
                    continue
                if len(batch) == 1 or isinstance(exc, OperationalError):
                    for item in batch:
                        self._fail(item, exc)
                    return
            else:
                for item in batch:
                    item.finish()
                return
        for item in batch:
            try:
                self._insert([item])
            except Exception as exc:
                self._fail(item, exc)
            else:
                item.finish()

    def _insert(self, batch: list[Pending]) -> None:
        with self._between_processes():
            connection = self._connection()
            try:
                # The pipeline reads the visitors' newest views in the transaction that
                # stores the new ones (on SQLite, under the writers' lock).
                with connection.begin():
                    done = self.pipeline.run(connection, ((i.table, i.row) for i in batch))
            except Exception:
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

    @contextlib.contextmanager
    def _between_processes(self) -> Iterator[None]:
        """On SQLite, take turns with the other server processes' writers.

        SQLite's own busy handler polls with growing sleeps, so two processes
        wanting the write lock wait milliseconds past its release; a blocking
        ``flock`` on a file beside the database wakes the next writer at once.
        """
        if self.lock_path is None or fcntl is None:
            yield
            return
        if self.lock_file is None:  # opened in the writer thread: after any fork
            try:
                self.lock_file = open(self.lock_path, "a+b")  # noqa: SIM115 - kept open
            except OSError:
                self.lock_path = None
                yield
                return
        fcntl.flock(self.lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.lock_file, fcntl.LOCK_UN)

    def _fail(self, item: Pending, exc: Exception) -> None:
        message = describe(exc) if isinstance(exc, SQLAlchemyError) else str(exc)[:300]
        self.app.logger.error("could not store a hit in %s: %s", item.table.name, message)
        item.finish("database unavailable")


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
