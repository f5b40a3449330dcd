"""MySQL and MariaDB (pymysql): utf8mb4, read-only sessions, statement time limits."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Select, Table, insert

from crumby.store.base import DatabaseSpec, count, expr

#: error codes that mean "the statement ran out of time"
_TIMEOUT_CODES = {1969, 3024, 1317}
#: MariaDB sorts rows longer than max_length_for_sort_data (1 KiB by default) by row id and
#: reads each row again afterwards: with a table larger than the buffer pool, a GROUP BY over a
#: year of visits then spent 20-50 s in random reads. Reports sort few, narrow columns.
MARIADB_SORT_DATA = 65536


def _is_mariadb(conn: Connection) -> bool:
    return bool(getattr(conn.dialect, "is_mariadb", False))


class MySQLSpec(DatabaseSpec):
    """MySQL 8 and MariaDB 10.6+."""

    name = "mysql"

    def engine_options(self, uri: str) -> dict[str, Any]:
        options = super().engine_options(uri)
        options["connect_args"] = {"charset": "utf8mb4"}
        return options

    def connect_params(self, info: dict, cparams: dict, seconds: float) -> None:
        """pymysql's ``connect_timeout`` covers the TCP connect only; the greeting and the
        login wait on ``read_timeout``, so both are bounded while connecting."""
        info["crumby.timeouts"] = (cparams.get("read_timeout"), cparams.get("write_timeout"))
        cparams["connect_timeout"] = min(seconds, cparams.get("connect_timeout") or seconds)
        cparams["read_timeout"] = cparams["write_timeout"] = seconds

    def after_connect(self, info: dict, dbapi_connection: Any) -> None:
        """Back to the configured socket timeouts (none by default: a big delete may be slow)."""
        read, write = info.pop("crumby.timeouts", (None, None))
        dbapi_connection._read_timeout = read
        dbapi_connection._write_timeout = write

    def bound_connection(self, dbapi_connection: Any, until: float) -> Any:
        """pymysql reads its socket timeouts before each read and write: what is left."""
        before = (dbapi_connection._read_timeout, dbapi_connection._write_timeout)
        left = max(0.01, until - time.monotonic())
        dbapi_connection._read_timeout = dbapi_connection._write_timeout = left
        return before

    def unbound_connection(self, dbapi_connection: Any, token: Any) -> None:
        if dbapi_connection is not None and token is not None:
            dbapi_connection._read_timeout, dbapi_connection._write_timeout = token

    def add_counts_clause(self, table: str, keys: tuple[str, ...], counts: tuple[str, ...]) -> str:
        """ON DUPLICATE KEY UPDATE n = n + VALUES(n)."""
        return " ON DUPLICATE KEY UPDATE " + ", ".join(
            f"`{n}` = `{n}` + VALUES(`{n}`)" for n in counts
        )

    def table_bytes(self, connection: Connection, table: str) -> int | None:
        """InnoDB's data and index length (an estimate InnoDB keeps up to date loosely)."""
        return connection.exec_driver_sql(
            "SELECT data_length + index_length FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name = %(t)s",
            {"t": table},
        ).scalar()

    def insert_ignore(self, connection: Connection, table: Table, values: dict[str, Any]) -> bool:
        return connection.execute(insert(table).prefix_with("IGNORE"), values).rowcount == 1

    def latest(self, statement: Select) -> Select:
        """InnoDB's plain reads see the transaction's snapshot; a locking read the newest row."""
        return statement.with_for_update(read=True)

    def begin_report(self, conn: Connection, seconds: float) -> None:
        """``TRANSACTION READ ONLY`` for the session refuses DDL too, whose implicit commit
        would escape a read-only transaction."""
        if _is_mariadb(conn):
            conn.exec_driver_sql(f"SET SESSION max_statement_time = {seconds:.3f}")
            conn.exec_driver_sql(f"SET SESSION max_length_for_sort_data = {MARIADB_SORT_DATA}")
        else:
            conn.exec_driver_sql(f"SET SESSION max_execution_time = {max(1, int(seconds * 1000))}")
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        conn.exec_driver_sql("START TRANSACTION READ ONLY")

    def end_report(self, conn: Connection) -> None:
        conn.rollback()
        conn.exec_driver_sql("SET SESSION TRANSACTION READ WRITE")
        if _is_mariadb(conn):
            conn.exec_driver_sql("SET SESSION max_statement_time = DEFAULT")
            conn.exec_driver_sql("SET SESSION max_length_for_sort_data = DEFAULT")
        else:
            conn.exec_driver_sql("SET SESSION max_execution_time = DEFAULT")
        conn.commit()

    def is_timeout(self, orig: BaseException) -> bool:
        args = getattr(orig, "args", ())
        return bool(args) and args[0] in _TIMEOUT_CODES

    def add_seconds(self, e: str, n: int) -> str:
        return f"({expr(e)} + INTERVAL {count(n)} SECOND)"

    def date_of(self, e: str) -> str:
        return f"DATE({expr(e)})"

    def hour_of(self, e: str, suffix: str) -> str:
        return f"DATE_FORMAT({expr(e)}, '%Y-%m-%dT%H:00:00{suffix}')"

    def text_of(self, e: str, suffix: str) -> str:
        return f"DATE_FORMAT({expr(e)}, '%Y-%m-%dT%H:%i:%s{suffix}')"

    def week_of(self, e: str) -> str:
        e = expr(e)
        return f"DATE(DATE_SUB({e}, INTERVAL WEEKDAY({e}) DAY))"

    def month_of(self, e: str) -> str:
        return f"DATE(DATE_FORMAT({expr(e)}, '%Y-%m-01'))"

    def seconds_between(self, a: str, b: str) -> str:
        return f"TIMESTAMPDIFF(SECOND, {expr(a)}, {expr(b)})"

    def url_host(self, e: str) -> str:
        e = expr(e)
        return (
            f"lower(CASE WHEN LOCATE('://', {e}) > 0 THEN "
            f"SUBSTRING_INDEX(SUBSTRING_INDEX({e}, '://', -1), '/', 1) ELSE NULL END)"
        )

    def ratio(self, a: str, b: str) -> str:
        return f"(({expr(a)}) / NULLIF({expr(b)}, 0))"

    def equals(self, e: str, bind: str) -> str:
        """Byte for byte: the tables' collation would match ``de`` to ``DE`` and ignore
        trailing spaces, so a filter would match more on MySQL than elsewhere."""
        return f"CAST({expr(e)} AS BINARY) = CAST(:{bind} AS BINARY)"

    def analyze(self, connection: Connection, table: str) -> None:
        connection.exec_driver_sql(f"ANALYZE TABLE {table}").fetchall()

    def drop_index(self, connection: Connection, table: str, index: str) -> None:
        quote = connection.dialect.identifier_preparer.quote
        connection.exec_driver_sql(f"DROP INDEX {quote(index)} ON {quote(table)}")

    def require_column(self, connection: Connection, table: str, column: str, kind: str) -> None:
        quote = connection.dialect.identifier_preparer.quote
        connection.exec_driver_sql(
            f"ALTER TABLE {quote(table)} MODIFY {quote(column)} {kind} NOT NULL"
        )
