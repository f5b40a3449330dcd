"""Client-side bounds on every database wait: a per-request deadline, and a watchdog.

Server-side limits (``statement_timeout``, ``max_statement_time``) stop slow
queries, but not a database that does not answer at all: with the server
frozen (``kill -STOP``) or its host gone, the kernel keeps the connection
open and a driver waits on it forever, holding a worker thread. So the
client bounds its own waits:

- ``deadline(seconds)`` marks a piece of work (a report request, a readiness
  probe) that must end in time. Every connection checked out inside it, every
  pool ping and every new connection, is bounded by it: the database's spec
  (``crumby.store``) applies the remaining time the way its driver allows
  (socket timeouts for pymysql, a cut of the socket for psycopg).
- Outside any deadline, pings and new connections still get short bounds
  (``PING_SECONDS``, ``CONNECT_SECONDS``), so a checkout never hangs.
- ``Watchdog``: one thread per process that runs an action at a time unless
  it is disarmed first (psycopg's waits have no timeout of their own).
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

#: a pool's liveness ping of a connection before handing it out
PING_SECONDS = 1.0
#: opening a connection: the TCP connect, the server's greeting, the login
CONNECT_SECONDS = 5.0


class DeadlineExceeded(SQLAlchemyTimeout):
    """The database did not answer before the current deadline (a pool timeout, to callers)."""


_DEADLINE: ContextVar[float | None] = ContextVar("crumby_database_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every database wait inside to ``seconds`` from now (an outer, earlier one wins)."""
    end = time.monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(end if outer is None else min(end, outer))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


@contextmanager
def suspended() -> Iterator[None]:
    """No request deadline inside (new connections and pings keep their short bounds).

    For work that must not be cut halfway because the request that happened to
    start it is short: creating and upgrading the tables.
    """
    token = _DEADLINE.set(None)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (0 when passed), None outside any."""
    end = _DEADLINE.get()
    return None if end is None else max(0.0, end - time.monotonic())


def expired() -> bool:
    """True inside a deadline that has passed: a failure now is the bound, not the query."""
    left = remaining()
    return left is not None and left <= 0.0


def bound(default: float) -> float:
    """``default`` seconds, or less when the current deadline is nearer (never below 10 ms)."""
    left = remaining()
    return max(0.01, default if left is None else min(default, left))


class Watchdog:
    """Runs ``action`` at ``when`` (``time.monotonic()``) unless disarmed first.

    One daemon thread per process serves every armed entry (a heap of
    deadlines), so arming costs a heap push, not a thread. A forked child
    starts its own thread on first use.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[list] = []
        self._order = itertools.count()
        self._pid = 0

    def arm(self, when: float, action: Callable[[], None]) -> list:
        """Schedule ``action``; the returned entry disarms it."""
        entry = [when, next(self._order), action]
        with self._lock:
            if self._pid != os.getpid():
                self._heap = []
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="crumby-db-watchdog", daemon=True).start()
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._lock.notify()
        return entry

    def disarm(self, entry: list) -> None:
        """Cancel an armed action (no effect once it ran)."""
        entry[2] = None

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                entry = heapq.heappop(self._heap)
                action, entry[2] = entry[2], None
            if action is not None:
                try:
                    action()
                except Exception:  # noqa: S110 - the connection is already gone: nothing to cut
                    pass


WATCHDOG = Watchdog()
