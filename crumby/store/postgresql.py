"""PostgreSQL (psycopg 3): read-only transactions with a local statement timeout."""

from __future__ import annotations

import math
import os
import socket
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crumby.store.base import DatabaseSpec, count, expr
from crumby.store.deadlines import WATCHDOG

_TIMEOUT_STATE = "57014"
#: TCP keepalives: a server whose host went away is noticed in about a minute
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _cut(dbapi_connection: Any) -> None:
    """Shut the connection's socket down: a wait on it ends at once, with an error.

    psycopg waits on its socket without a timeout, and a cancel request goes
    to the same (frozen) server, so the client ends the wait itself. The
    connection is broken afterwards, and SQLAlchemy drops it from the pool.
    """
    if dbapi_connection.closed:
        return
    copy = socket.socket(fileno=os.dup(dbapi_connection.pgconn.socket))
    try:
        copy.shutdown(socket.SHUT_RDWR)
    finally:
        copy.close()


class PostgreSQLSpec(DatabaseSpec):
    """PostgreSQL 13+."""

    name = "postgresql"

    def engine_options(self, uri: str) -> dict[str, Any]:
        options = super().engine_options(uri)
        options["connect_args"] = dict(KEEPALIVES)
        return options

    def connect_params(self, info: dict, cparams: dict, seconds: float) -> None:
        """libpq's ``connect_timeout`` (whole seconds; psycopg waits at least 2)."""
        given = int(cparams.get("connect_timeout") or 0)
        limit = max(2, math.floor(seconds))
        cparams["connect_timeout"] = min(given, limit) if given else limit

    def bound_connection(self, dbapi_connection: Any, until: float) -> Any:
        return WATCHDOG.arm(until, lambda: _cut(dbapi_connection))

    def unbound_connection(self, dbapi_connection: Any, token: Any) -> None:
        WATCHDOG.disarm(token)

    def add_counts_clause(self, table: str, keys: tuple[str, ...], counts: tuple[str, ...]) -> str:
        """ON CONFLICT (key) DO UPDATE SET n = t.n + excluded.n."""
        adds = ", ".join(f'"{n}" = "{table}"."{n}" + excluded."{n}"' for n in counts)
        key = ", ".join(f'"{k}"' for k in keys)
        return f" ON CONFLICT ({key}) DO UPDATE SET {adds}"

    def table_bytes(self, connection: Connection, table: str) -> int | None:
        """``pg_total_relation_size``: the table, its indexes and TOAST."""
        return connection.exec_driver_sql(
            "SELECT pg_total_relation_size(%(t)s::regclass)", {"t": table}
        ).scalar()

    def insert_ignore(self, connection: Connection, table: Table, values: dict[str, Any]) -> bool:
        """ON CONFLICT DO NOTHING; the next statement (READ COMMITTED) sees the winner's row."""
        # (psycopg reports no rowcount for it: RETURNING tells whether a row went in)
        key = list(table.primary_key)[0]
        statement = pg_insert(table).on_conflict_do_nothing().returning(key)
        return connection.execute(statement, values).first() is not None

    def begin_report(self, conn: Connection, seconds: float) -> None:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")

    def end_report(self, conn: Connection) -> None:
        conn.rollback()  # SET LOCAL ends with the transaction

    def is_timeout(self, orig: BaseException) -> bool:
        return getattr(orig, "sqlstate", None) == _TIMEOUT_STATE

    def add_seconds(self, e: str, n: int) -> str:
        return f"({expr(e)} + INTERVAL '{count(n)} seconds')"

    def date_of(self, e: str) -> str:
        return f"CAST({expr(e)} AS DATE)"

    def hour_of(self, e: str, suffix: str) -> str:
        return f"to_char(date_trunc('hour', {expr(e)}), 'YYYY-MM-DD\"T\"HH24:00:00\"{suffix}\"')"

    def require_column(self, connection: Connection, table: str, column: str, kind: str) -> None:
        quote = connection.dialect.identifier_preparer.quote
        connection.exec_driver_sql(
            f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} SET NOT NULL"
        )

    def text_of(self, e: str, suffix: str) -> str:
        return f'to_char({expr(e)}, \'YYYY-MM-DD"T"HH24:MI:SS"{suffix}"\')'

    def week_of(self, e: str) -> str:
        return f"CAST(date_trunc('week', {expr(e)}) AS DATE)"

    def month_of(self, e: str) -> str:
        return f"CAST(date_trunc('month', {expr(e)}) AS DATE)"

    def seconds_between(self, a: str, b: str) -> str:
        return f"EXTRACT(EPOCH FROM ({expr(b)} - {expr(a)}))"

    def url_host(self, e: str) -> str:
        e = expr(e)
        return (
            f"lower(CASE WHEN strpos({e}, '://') > 0 THEN "
            f"split_part(split_part({e}, '://', 2), '/', 1) ELSE NULL END)"
        )

    def ratio(self, a: str, b: str) -> str:
        return f"(CAST({expr(a)} AS DOUBLE PRECISION) / NULLIF({expr(b)}, 0))"
