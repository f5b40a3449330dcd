"""SQLite: WAL, a busy timeout, a cross-process writer lock file and an authorizer for reports."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, DateTime, Table, event, insert
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.engine import Dialect, Engine

from crumby.store.base import DatabaseSpec, count, expr

BUSY_TIMEOUT_MS = 5000
#: page cache of a connection storing a log import's batches, in KiB (the default is 2 MiB)
BULK_CACHE_KIB = 64 * 1024

#: authorizer actions a report may use; everything else (writes, PRAGMA, ATTACH) is denied
_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}


def _authorizer(action: int, *_args: Any) -> int:
    return sqlite3.SQLITE_OK if action in _ALLOWED else sqlite3.SQLITE_DENY


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; foreign keys make deletes cascade."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class SQLiteSpec(DatabaseSpec):
    """The embedded default."""

    name = "sqlite"

    def engine_options(self, uri: str) -> dict[str, Any]:
        return {"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000}}

    def install(self, engine: Engine) -> None:
        super().install(engine)
        event.listen(engine, "connect", _pragmas)

    def bulk_writes(self, connection: Connection) -> None:
        """A page cache that holds a batch's dirty index pages.

        A batch of a log import touches a page of the visitor index per row or
        so; with SQLite's default 2 MiB cache those pages spill to the WAL (and
        are read back) in the middle of the transaction, once the table has
        grown past a few hundred thousand rows. The cache is allocated as it
        fills, per connection: only a connection that stores bulk batches asks.
        """
        connection.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")

    def bind_processor(self, column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
        """SQLAlchemy's, with a shortcut for naive datetimes in its default text format.

        ``isoformat(" ", "microseconds")`` writes exactly the text SQLAlchemy's
        ``DATETIME`` writes (``2026-11-23 08:15:00.000000``), several times
        faster; a log import converts two datetimes of every row.
        """
        process = super().bind_processor(column_type, dialect)
        impl = column_type.dialect_impl(dialect)
        if (
            process is None
            or not isinstance(column_type, DateTime)
            or getattr(impl, "_storage_format", None) != DATETIME._storage_format
        ):
            return process
        exact = dt.datetime

        def fast(value: Any) -> Any:
            if type(value) is exact and value.tzinfo is None:
                return value.isoformat(" ", "microseconds")
            return process(value)

        return fast

    def writer_lock_path(self, engine: Engine) -> str | None:
        """A blocking ``flock`` beside the file wakes the next writer at once.

        SQLite's own busy handler polls with growing sleeps, so two processes
        wanting the write lock wait milliseconds past its release.
        """
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return os.path.abspath(database) + "-crumby-writer.lock"

    def add_counts_clause(self, table: str, keys: tuple[str, ...], counts: tuple[str, ...]) -> str:
        """ON CONFLICT (key) DO UPDATE SET n = n + excluded.n."""
        adds = ", ".join(f'"{n}" = "{n}" + excluded."{n}"' for n in counts)
        key = ", ".join(f'"{k}"' for k in keys)
        return f" ON CONFLICT ({key}) DO UPDATE SET {adds}"

    def insert_ignore(self, connection: Connection, table: Table, values: dict[str, Any]) -> bool:
        """INSERT OR IGNORE: writers take turns on SQLite, so the row is there or not."""
        return connection.execute(insert(table).prefix_with("OR IGNORE"), values).rowcount == 1

    def begin_report(self, conn: Connection, seconds: float) -> None:
        raw = conn.connection.dbapi_connection
        conn.exec_driver_sql("PRAGMA query_only = ON")
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        raw.set_authorizer(_authorizer)

    def end_report(self, conn: Connection) -> None:
        raw = conn.connection.dbapi_connection
        raw.set_authorizer(None)
        raw.set_progress_handler(None, 0)
        conn.rollback()
        conn.exec_driver_sql("PRAGMA query_only = OFF")
        conn.commit()

    def is_timeout(self, orig: BaseException) -> bool:
        return isinstance(orig, sqlite3.OperationalError) and "interrupted" in str(orig)

    def add_seconds(self, e: str, n: int) -> str:
        return f"datetime({expr(e)}, '{count(n):+d} seconds')"

    def date_of(self, e: str) -> str:
        return f"date({expr(e)})"

    def hour_of(self, e: str, suffix: str) -> str:
        return f"strftime('%Y-%m-%dT%H:00:00{suffix}', {expr(e)})"

    def text_of(self, e: str, suffix: str) -> str:
        return f"strftime('%Y-%m-%dT%H:%M:%S{suffix}', {expr(e)})"

    def week_of(self, e: str) -> str:
        return f"date({expr(e)}, '-6 days', 'weekday 1')"

    def month_of(self, e: str) -> str:
        return f"date({expr(e)}, 'start of month')"

    def seconds_between(self, a: str, b: str) -> str:
        return f"ROUND((julianday({expr(b)}) - julianday({expr(a)})) * 86400.0, 3)"

    def url_host(self, e: str) -> str:
        e = expr(e)
        rest = f"substr({e}, instr({e}, '://') + 3)"
        return (
            f"lower(CASE WHEN instr({e}, '://') > 0 THEN "
            f"CASE WHEN instr({rest}, '/') > 0 THEN substr({rest}, 1, instr({rest}, '/') - 1) "
            f"ELSE {rest} END ELSE NULL END)"
        )

    def ratio(self, a: str, b: str) -> str:
        return f"(CAST({expr(a)} AS REAL) / NULLIF({expr(b)}, 0))"

    def table_bytes(self, connection: Connection, table: str) -> int | None:
        """From the ``dbstat`` table, where SQLite was built with it."""
        try:
            return connection.exec_driver_sql(
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master"
                " WHERE tbl_name = ?)",
                (table,),
            ).scalar()
        except Exception:  # noqa: BLE001 - no dbstat: the size is unknown, not an error
            return None

    def analyze(self, connection: Connection, table: str) -> None:
        connection.exec_driver_sql(f"ANALYZE {table}")
