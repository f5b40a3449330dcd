"""Running a rendered query read-only, with a time limit, and shaping its result.

Each dialect gets a guard that opens a read-only transaction and a statement
time limit before the query and undoes both after it:

- SQLite: ``PRAGMA query_only`` plus an authorizer that allows reading only
  (no PRAGMA, ATTACH or DDL from a query file), and a progress handler that
  interrupts the statement at the deadline.
- MySQL/MariaDB: the session is set ``TRANSACTION READ ONLY`` (which also
  refuses DDL, whose implicit commit would escape a read-only transaction),
  then ``START TRANSACTION READ ONLY``; ``max_statement_time`` (MariaDB) or
  ``max_execution_time`` (MySQL) limits it. On MariaDB the report also sorts
  whole rows (``max_length_for_sort_data``) instead of re-reading them.
- PostgreSQL: ``SET TRANSACTION READ ONLY`` and ``SET LOCAL statement_timeout``.

A connection whose settings cannot be reset is invalidated, so a read-only or
time-limited connection never goes back to the pool for other work.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import Connection, DateTime, bindparam, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from crumby.database import DatabaseError, describe
from crumby.extensions import db
from crumby.reporting.rendering import Rendered

#: SQLite authorizer actions a report may use; everything else (writes, PRAGMA, ATTACH) is denied
_SQLITE_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}
#: error codes that mean "the statement ran out of time"
_MYSQL_TIMEOUT_CODES = {1969, 3024, 1317}
_POSTGRES_TIMEOUT_STATE = "57014"


class QueryTimeout(Exception):
    """The statement ran longer than REPORT_TIMEOUT_SECONDS."""


@dataclass(frozen=True)
class Raw:
    """Column names and rows exactly as the driver returned them."""

    columns: list[str]
    rows: list[Sequence[Any]]


def _sqlite_authorizer(action: int, *_args: Any) -> int:
    return sqlite3.SQLITE_OK if action in _SQLITE_ALLOWED else sqlite3.SQLITE_DENY


def _begin_sqlite(conn: Connection, seconds: float) -> None:
    raw = conn.connection.dbapi_connection
    conn.exec_driver_sql("PRAGMA query_only = ON")
    deadline = time.monotonic() + seconds
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    raw.set_authorizer(_sqlite_authorizer)


def _end_sqlite(conn: Connection) -> None:
    raw = conn.connection.dbapi_connection
    raw.set_authorizer(None)
    raw.set_progress_handler(None, 0)
    conn.rollback()
    conn.exec_driver_sql("PRAGMA query_only = OFF")
    conn.commit()


def _is_mariadb(conn: Connection) -> bool:
    return bool(getattr(conn.dialect, "is_mariadb", False))


#: MariaDB sorts rows longer than max_length_for_sort_data (1 KiB by default) by row id and
#: reads each row again afterwards: with a table larger than the buffer pool, a GROUP BY over a
#: year of visits then spent 20-50 s in random reads. Reports sort few, narrow columns.
MARIADB_SORT_DATA = 65536


def _begin_mysql(conn: Connection, seconds: float) -> None:
    if _is_mariadb(conn):
        conn.exec_driver_sql(f"SET SESSION max_statement_time = {seconds:.3f}")
        conn.exec_driver_sql(f"SET SESSION max_length_for_sort_data = {MARIADB_SORT_DATA}")
    else:
        conn.exec_driver_sql(f"SET SESSION max_execution_time = {max(1, int(seconds * 1000))}")
    conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
    conn.exec_driver_sql("START TRANSACTION READ ONLY")


def _end_mysql(conn: Connection) -> None:
    conn.rollback()
    conn.exec_driver_sql("SET SESSION TRANSACTION READ WRITE")
    if _is_mariadb(conn):
        conn.exec_driver_sql("SET SESSION max_statement_time = DEFAULT")
        conn.exec_driver_sql("SET SESSION max_length_for_sort_data = DEFAULT")
    else:
        conn.exec_driver_sql("SET SESSION max_execution_time = DEFAULT")
    conn.commit()


def _begin_postgresql(conn: Connection, seconds: float) -> None:
    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")


def _end_postgresql(conn: Connection) -> None:
    conn.rollback()  # SET LOCAL ends with the transaction


_GUARDS = {
    "sqlite": (_begin_sqlite, _end_sqlite),
    "mysql": (_begin_mysql, _end_mysql),
    "postgresql": (_begin_postgresql, _end_postgresql),
}


def is_timeout(exc: BaseException) -> bool:
    """True when a driver error means the statement hit the time limit."""
    orig = getattr(exc, "orig", exc)
    if isinstance(orig, sqlite3.OperationalError):
        return "interrupted" in str(orig)
    if getattr(orig, "sqlstate", None) == _POSTGRES_TIMEOUT_STATE:
        return True
    args = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_TIMEOUT_CODES


def execute(rendered: Rendered, seconds: float) -> Raw:
    """Run the SQL read-only within ``seconds``; raises QueryTimeout or SQLAlchemyError."""
    statement = text(rendered.sql).bindparams(
        *(bindparam(name, type_=DateTime()) for name in rendered.params)
    )
    try:
        connection = db.engine.connect()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"database unavailable: {describe(exc)}") from None
    with connection as conn:
        begin, end = _GUARDS[conn.dialect.name]
        try:
            begin(conn, seconds)
            result = conn.execute(statement, rendered.params)
            if not result.returns_rows:
                raise SQLAlchemyError("the query returned no rows (is it a SELECT?)")
            raw = Raw(columns=list(result.keys()), rows=list(result.fetchall()))
        except DBAPIError as exc:
            if is_timeout(exc):
                raise QueryTimeout(f"took longer than {seconds:g} s") from exc
            raise
        finally:
            try:
                end(conn)
            except Exception:  # never pool a connection left read-only or time-limited
                current_app.logger.warning("invalidating a report connection it could not reset")
                conn.invalidate()
    return raw


def json_value(value: Any) -> Any:
    """A value as JSON wants it: ISO dates, UTC datetimes with Z, plain numbers."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def to_json_rows(rows: list[Sequence[Any]]) -> list[list[Any]]:
    """Every row as a list of JSON-ready values."""
    return [[json_value(v) for v in row] for row in rows]
