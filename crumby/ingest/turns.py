"""Taking turns with the other processes that write to the same SQLite file.

SQLite lets one writer in at a time, and its busy handler polls with growing
sleeps, so two processes wanting the write lock wait milliseconds past its
release. A blocking ``flock`` on a file beside the database (its path comes
from the database's spec, ``writer_lock_path``; None for server databases,
which order their writers themselves) wakes the next writer at once. The hit
writer of every server process and ``crumby ingest-log``/``syslog`` share it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO

from sqlalchemy.engine import Engine

from crumby.store import spec_of

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]


class WriteTurns:
    """One process's (or thread's) side of the lock file; ``turn()`` holds it."""

    def __init__(self, path: str | None) -> None:
        self.path = path if fcntl is not None else None
        self.file: IO[bytes] | None = None

    @classmethod
    def for_engine(cls, engine: Engine) -> WriteTurns:
        """The turns of the database behind ``engine``."""
        return cls(spec_of(engine).writer_lock_path(engine))

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this writer's turn and hold it for the block (no-op without a lock file)."""
        if self.path is None:
            yield
            return
        if self.file is None:  # opened by the thread that writes: after any fork
            try:
                self.file = open(self.path, "a+b")  # noqa: SIM115 - kept open between turns
            except OSError:  # a read-only folder: SQLite's own locking still holds
                self.path = None
                yield
                return
        fcntl.flock(self.file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.file, fcntl.LOCK_UN)

    def forget(self) -> None:
        """Drop the open file without closing it: after a fork it is the parent's."""
        self.file = None

    def close(self) -> None:
        """Close the lock file (the next turn opens it again)."""
        file, self.file = self.file, None
        if file is not None:
            file.close()
