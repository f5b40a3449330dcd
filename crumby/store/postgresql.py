"""PostgreSQL (psycopg 3): read-only transactions with a local statement timeout."""

from __future__ import annotations

from sqlalchemy import Connection

from crumby.store.base import DatabaseSpec, count, expr

_TIMEOUT_STATE = "57014"


class PostgreSQLSpec(DatabaseSpec):
    """PostgreSQL 13+."""

    name = "postgresql"

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
