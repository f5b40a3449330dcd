"""The interface every database's spec fills in, with the parts they share."""

from __future__ import annotations

import functools
import operator
import re
import time
from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import Column, Connection, Select, Table, event
from sqlalchemy.engine import Dialect, Engine

from crumby.store import deadlines

#: helper arguments are SQL expressions written by the query author, never request values;
#: still, refuse a statement separator so that a slip fails early and clearly. The length
#: bound leaves room for the helpers' own nesting: ``day(e)`` wraps the local-time CASE of
#: a site's zone, a branch per daylight-saving change in the range (200 for a century)
_EXPRESSION = re.compile(r"^[^;]{1,200000}$")


class DialectError(ValueError):
    """The database is not supported, or a SQL helper got an unusable argument."""


def expr(value: object) -> str:
    """A query author's SQL expression, checked to be one expression."""
    text = str(value)
    if not _EXPRESSION.match(text):
        raise DialectError(f"not a plain SQL expression: {text!r}")
    return text


def count(value: object) -> int:
    """A whole number for a helper (``add_days(e, 1)``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DialectError(f"expected a whole number, got {value!r}")
    return value


class DatabaseSpec:
    """One database: connection options, the report guard, SQL helpers, locking, statistics."""

    name: ClassVar[str] = ""

    # ---- connections ----------------------------------------------------------------------

    def engine_options(self, uri: str) -> dict[str, Any]:
        """Pool settings that suit a long-running web server."""
        return {"pool_pre_ping": True, "pool_recycle": 3600}

    def install(self, engine: Engine) -> None:
        """Hook per-connection settings into a new engine: here, the client-side bounds.

        New connections and pool pings always get short bounds; a connection
        checked out inside ``deadlines.deadline()`` is bounded by it until it
        goes back to the pool (``crumby.store.deadlines``).
        """
        event.listen(engine, "do_connect", self._bounded_connect)
        event.listen(engine, "connect", self._connected)
        event.listen(engine, "checkout", self._checked_out)
        for name in ("checkin", "close", "invalidate"):
            event.listen(engine, name, self._released)
        ping = engine.dialect.do_ping

        def bounded_ping(dbapi_connection: Any) -> bool:
            until = time.monotonic() + deadlines.bound(deadlines.PING_SECONDS)
            token = self.bound_connection(dbapi_connection, until)
            alive = False
            try:
                alive = ping(dbapi_connection)
                return alive
            finally:
                self.unbound_connection(dbapi_connection, token)
                # Silent till the bound: inside a deadline, fail now rather than let the
                # pool try a new connection to a server that does not answer (outside
                # one, the pool reconnects: the old connection may be the only thing dead).
                if not alive and deadlines.remaining() is not None and time.monotonic() >= until:
                    raise deadlines.DeadlineExceeded("the database did not answer in time")

        engine.dialect.do_ping = bounded_ping  # type: ignore[method-assign]

    def _bounded_connect(self, dialect: Any, record: Any, cargs: Any, cparams: dict) -> None:
        self.connect_params(record.info, cparams, deadlines.bound(deadlines.CONNECT_SECONDS))

    def _connected(self, dbapi_connection: Any, record: Any) -> None:
        self.after_connect(record.info, dbapi_connection)

    def _checked_out(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        left = deadlines.remaining()
        if left is not None:
            until = time.monotonic() + max(0.01, left)
            record.info["crumby.bound"] = self.bound_connection(dbapi_connection, until)

    def _released(self, dbapi_connection: Any, record: Any, *_exc: Any) -> None:
        if record is not None and "crumby.bound" in record.info:
            self.unbound_connection(dbapi_connection, record.info.pop("crumby.bound"))

    # ---- client-side bounds (filled in per driver) -------------------------------------------

    def connect_params(self, info: dict, cparams: dict, seconds: float) -> None:
        """Bound the opening of a new connection to about ``seconds`` (driver arguments)."""

    def after_connect(self, info: dict, dbapi_connection: Any) -> None:
        """Undo what ``connect_params`` set that must not outlive the connect."""

    def bound_connection(self, dbapi_connection: Any, until: float) -> Any:
        """Make every wait on this connection end by ``until`` (monotonic); returns a token."""
        return None

    def unbound_connection(self, dbapi_connection: Any, token: Any) -> None:
        """Undo ``bound_connection`` (``dbapi_connection`` may be None once it is gone)."""

    def bulk_writes(self, connection: Connection) -> None:
        """Tune a connection that is about to store a large batch (a log import)."""

    def bind_processor(self, column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
        """How ``insert_rows`` converts a column's values for the driver: the dialect's own."""
        return column_type.dialect_impl(dialect).bind_processor(dialect)

    def writer_lock_path(self, engine: Engine) -> str | None:
        """A file the writers of all processes take turns on, or None where the database queues."""
        return None

    # ---- reports --------------------------------------------------------------------------

    def begin_report(self, conn: Connection, seconds: float) -> None:
        """Make the connection read-only with a statement time limit."""
        raise NotImplementedError

    def end_report(self, conn: Connection) -> None:
        """Undo ``begin_report`` so that the connection can go back to the pool."""
        raise NotImplementedError

    def is_timeout(self, orig: BaseException) -> bool:
        """True when a driver error means the statement hit the time limit."""
        return False

    # ---- SQL helpers for query templates --------------------------------------------------

    def add_seconds(self, e: str, n: int) -> str:
        """The datetime ``n`` seconds after ``e``."""
        raise NotImplementedError

    def date_of(self, e: str) -> str:
        """The date part of a datetime, as a DATE."""
        raise NotImplementedError

    def hour_of(self, e: str, suffix: str) -> str:
        """The start of the hour of a datetime, as text ``2026-11-23T08:00:00`` + ``suffix``."""
        raise NotImplementedError

    def text_of(self, e: str, suffix: str) -> str:
        """A datetime to the second, as text ``2026-11-23T08:15:00`` + ``suffix``."""
        raise NotImplementedError

    def week_of(self, e: str) -> str:
        """The Monday that starts the week of a datetime, as a DATE."""
        raise NotImplementedError

    def month_of(self, e: str) -> str:
        """The first day of the month of a datetime, as a DATE."""
        raise NotImplementedError

    def seconds_between(self, a: str, b: str) -> str:
        """Seconds from ``a`` to ``b``."""
        raise NotImplementedError

    def url_host(self, e: str) -> str:
        """The lower-cased host of a URL, NULL when it has none."""
        raise NotImplementedError

    def ratio(self, a: str, b: str) -> str:
        """``a / b`` as a fraction, NULL when b is 0."""
        raise NotImplementedError

    def equals(self, e: str, bind: str) -> str:
        """``e`` equals the bound parameter ``:bind`` exactly (case, accents, trailing spaces)."""
        return f"{expr(e)} = :{bind}"

    # ---- rows shared by concurrent writers -----------------------------------------------

    def insert_ignore(self, connection: Connection, table: Table, values: dict[str, Any]) -> bool:
        """Insert a row unless one with its key exists (being committed: wait); True if new."""
        raise NotImplementedError

    def add_counts(
        self,
        connection: Connection,
        table: Table,
        rows: list[dict[str, Any]],
        counts: tuple[str, ...],
    ) -> None:
        """Insert rows keyed by the table's primary key; where a key exists, add ``counts`` to it.

        The upsert of derived tables (``crumby.ingest.rollups``): concurrent
        writers adding to the same row each add their share. One driver
        ``executemany`` of a statement built once (``insert_rows``): the
        pipeline runs it for every batch of hits.
        """
        keys = tuple(column.name for column in table.primary_key)
        insert_rows(connection, table, rows, self.add_counts_clause(table.name, keys, counts))

    def add_counts_clause(self, table: str, keys: tuple[str, ...], counts: tuple[str, ...]) -> str:
        """The clause after ``INSERT ... VALUES (...)`` that adds ``counts`` to an existing row."""
        raise NotImplementedError

    def latest(self, statement: Select) -> Select:
        """A SELECT that sees rows other transactions committed after this one began."""
        return statement

    # ---- maintenance ----------------------------------------------------------------------

    def analyze(self, connection: Connection, table: str) -> None:
        """Refresh the planner's statistics of a table."""
        connection.exec_driver_sql(f"ANALYZE {table}")

    def table_bytes(self, connection: Connection, table: str) -> int | None:
        """A table's size on disk with its indexes, None where the database does not tell."""
        return None

    def drop_index(self, connection: Connection, table: str, index: str) -> None:
        """Drop an index by name."""
        quote = connection.dialect.identifier_preparer.quote
        connection.exec_driver_sql(f"DROP INDEX {quote(index)}")

    def require_column(self, connection: Connection, table: str, column: str, kind: str) -> None:
        """Make a column added by a migration NOT NULL, once it is filled.

        SQLite cannot change a column in place (it would need the table copied),
        so there the column stays nullable and the model's NOT NULL holds for
        new tables only; the ingest pipeline never writes NULL into it.
        """


#: the DB-API placeholder of each ``paramstyle`` a driver may use, for positional parameters
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def insert_rows(
    connection: Connection, table: Table, rows: list[dict[str, Any]], clause: str = ""
) -> None:
    """Insert rows that all have the same keys, with one ``executemany`` of the driver.

    ``clause`` follows the ``VALUES (...)``: an upsert's ``ON CONFLICT ...``.

    What ``connection.execute(table.insert(), rows)`` does, without building
    SQLAlchemy's parameter structures row by row: for a log import that was
    a third of the time of storing a row. The columns' own bind processors
    (SQLite's datetime text, for one) still convert each value.
    """
    if not rows:
        return
    # keys that name no column are left out, as SQLAlchemy's insert() leaves them
    keys = tuple(key for key in rows[0] if key in table.c)
    # columns left out take their Python-side default, as SQLAlchemy's insert() gives them
    defaults = [
        column
        for column in table.columns
        if column.default is not None and column.name not in rows[0]
    ]
    if defaults:
        rows = [{**row, **{c.name: _default(c) for c in defaults}} for row in rows]
        keys += tuple(column.name for column in defaults)
    sql, processors = _insert_plan(connection.dialect, table, keys)
    sql += clause
    # most columns are passed as they are: convert only those with a processor
    converted = [(n, process) for n, process in enumerate(processors) if process is not None]
    values_of = operator.itemgetter(*keys)
    if len(keys) == 1:
        params: list[Any] = [(values_of(row),) for row in rows]
    else:
        params = [values_of(row) for row in rows]
    if converted:
        for i, values in enumerate(params):
            values = list(values)
            for n, process in converted:
                if values[n] is not None:
                    values[n] = process(values[n])
            params[i] = tuple(values)
    connection.exec_driver_sql(sql, params)


def _default(column: Column[Any]) -> Any:
    """A column's Python-side default value (SQLAlchemy wraps callables to take a context)."""
    default = column.default
    return default.arg(None) if default.is_callable else default.arg  # type: ignore[union-attr]


@functools.lru_cache(maxsize=64)
def _insert_plan(
    dialect: Dialect, table: Table, keys: tuple[str, ...]
) -> tuple[str, list[Callable[[Any], Any] | None]]:
    """The INSERT text and the bind processors for one table, key set and dialect."""
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:
        raise DialectError(f"unsupported DB-API paramstyle {dialect.paramstyle!r}")
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(key) for key in keys)
    values = ", ".join(placeholder for _ in keys)
    sql = f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({values})"
    # the dialect's own implementation of each type converts (a generic DateTime does not)
    from crumby.store import spec_for

    spec = spec_for(dialect.name)
    processors = [spec.bind_processor(table.c[key].type, dialect) for key in keys]
    return sql, processors
