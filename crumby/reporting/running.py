"""Running a rendered query read-only, with a time limit, and shaping its result.

The database's spec (``crumby.store``) opens a read-only transaction with a
statement time limit before the query and undoes both after it. A connection
whose settings cannot be reset is invalidated, so a read-only or
time-limited connection never goes back to the pool for other work.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from crumby.database import DatabaseError, describe
from crumby.extensions import db
from crumby.reporting.rendering import Rendered
from crumby.store import deadlines, spec_of


class QueryTimeout(Exception):
    """The statement ran longer than REPORT_TIMEOUT_SECONDS."""


@dataclass(frozen=True)
class Raw:
    """Column names and rows exactly as the driver returned them."""

    columns: list[str]
    rows: list[Sequence[Any]]


def execute(rendered: Rendered, seconds: float) -> Raw:
    """Run the SQL read-only within ``seconds``; raises QueryTimeout or SQLAlchemyError."""
    statement = text(rendered.sql).bindparams(
        *(
            bindparam(name, type_=DateTime())
            for name, value in rendered.params.items()
            if isinstance(value, dt.datetime)
        )
    )
    try:
        connection = db.engine.connect()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"database unavailable: {describe(exc)}") from None
    with connection as conn:
        spec = spec_of(conn)
        try:
            spec.begin_report(conn, seconds)
            result = conn.execute(statement, rendered.params)
            if not result.returns_rows:
                raise SQLAlchemyError("the query returned no rows (is it a SELECT?)")
            raw = Raw(columns=list(result.keys()), rows=list(result.fetchall()))
        except DBAPIError as exc:
            # the server stopped it at the limit, or the client did, a moment later, when
            # the server did not (a frozen server, a statement that does not check its clock)
            if spec.is_timeout(exc.orig) or deadlines.expired():
                raise QueryTimeout(f"took longer than {seconds:g} s") from exc
            if exc.connection_invalidated:  # the server went away
                raise DatabaseError(f"database unavailable: {describe(exc)}") from None
            raise
        finally:
            try:
                spec.end_report(conn)
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
