"""Everything that differs between SQLite, MySQL/MariaDB and PostgreSQL, one class per database.

Modelled on Apache Superset's ``db_engine_specs``: ``spec_for(name)`` finds the
class of a SQLAlchemy dialect name through a registry, and an unknown
database fails loudly instead of guessing. Nothing outside this package
branches on the dialect name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.engine import Engine, make_url

from crumby.store.base import DatabaseSpec, DialectError
from crumby.store.mysql import MySQLSpec
from crumby.store.postgresql import PostgreSQLSpec
from crumby.store.sqlite import SQLiteSpec

REGISTRY: dict[str, type[DatabaseSpec]] = {
    spec.name: spec for spec in (SQLiteSpec, MySQLSpec, PostgreSQLSpec)
}
SUPPORTED = tuple(REGISTRY)

__all__ = [
    "DatabaseSpec",
    "DialectError",
    "SUPPORTED",
    "bounded",
    "spec_for",
    "spec_of",
    "spec_for_uri",
]


def spec_for(dialect: str) -> DatabaseSpec:
    """The spec of a SQLAlchemy dialect name (``sqlite``, ``mysql``, ``postgresql``)."""
    try:
        return REGISTRY[dialect]()
    except KeyError:
        raise DialectError(
            f"Crumby does not support the database {dialect!r} (supported: {', '.join(SUPPORTED)})"
        ) from None


def spec_of(bind: Engine | Connection) -> DatabaseSpec:
    """The spec of an engine's or a connection's database."""
    return spec_for(bind.dialect.name)


def spec_for_uri(uri: str) -> DatabaseSpec:
    """The spec of a database URL."""
    return spec_for(make_url(uri).get_backend_name())


@contextmanager
def bounded(connection: Connection, seconds: float) -> Iterator[None]:
    """Every wait on this checked-out connection inside the block ends within ``seconds``.

    For a connection held across many units of work (a writer thread's), which
    the checkout-time bound of ``deadlines.deadline`` does not reach. A wait cut
    short raises the driver's error, and the connection is not usable after it.
    """
    spec = spec_of(connection)
    raw = connection.connection.dbapi_connection
    token = spec.bound_connection(raw, time.monotonic() + seconds)
    try:
        yield
    finally:
        spec.unbound_connection(raw, token)
