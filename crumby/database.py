"""The database connection tuned per dialect, table creation on first use, and migrations.

Schema changes are tracked by a one-row ``crumby_schema`` table rather than
Alembic: Crumby owns its few tables, upgrades must run unattended on the
user's server at start-up (no migration folder to ship or command to
remember), and each step is a small function that runs on every dialect.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, bindparam, event, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from crumby import models
from crumby.extensions import db

#: the calendar covers every day a report's range may ask for
CALENDAR_START = dt.date(2000, 1, 1)
CALENDAR_END = dt.date(2099, 12, 31)


def _add_columns(connection: Connection, table: str, names: list[str]) -> None:
    """ALTER TABLE ... ADD COLUMN for model columns the stored table lacks."""
    have = {column["name"] for column in inspect(connection).get_columns(table)}
    model_table = db.metadata.tables[table]
    preparer = connection.dialect.identifier_preparer
    for name in names:
        if name in have:
            continue
        column = model_table.c[name]
        kind = column.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(
            f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(name)} {kind}"
        )


def _recreate_index(connection: Connection, table: str, name: str) -> None:
    """Rebuild a model index whose stored columns differ from the model's."""
    index = next(i for i in db.metadata.tables[table].indexes if i.name == name)
    stored = {i["name"]: i["column_names"] for i in inspect(connection).get_indexes(table)}
    if stored.get(name) == [column.name for column in index.columns]:
        return
    if name in stored:
        quote = connection.dialect.identifier_preparer.quote
        on_table = f" ON {quote(table)}" if connection.dialect.name == "mysql" else ""
        connection.exec_driver_sql(f"DROP INDEX {quote(name)}{on_table}")
    index.create(connection)


def _v2_hosts_and_sessions(connection: Connection) -> None:
    """Version 2: page and referrer hosts, and sessions stitched at ingest, for fast reports."""
    from crumby import sessions

    _add_columns(
        connection,
        "visits",
        ["doc_host", "referrer_host", "session_start", "session_seq", "session_gap"],
    )
    _recreate_index(connection, "visits", "ix_visits_cid_datetime")
    fill_hosts(connection)
    sessions.stitch_missing(connection)


#: each step upgrades version N to N+1; a fresh database is created at the newest
MIGRATIONS: list[Callable[[Connection], None]] = [_v2_hosts_and_sessions]
SCHEMA_VERSION = 1 + len(MIGRATIONS)

SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseError(Exception):
    """The database is unreachable or refused the schema; the message is one line."""


def engine_options(uri: str) -> dict[str, Any]:
    """Pool settings that suit a long-running web server for this URL's dialect."""
    backend = make_url(uri).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_recycle": 3600}
    if backend == "mysql":
        options["connect_args"] = {"charset": "utf8mb4"}
    return options


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; foreign keys make deletes cascade."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def init_app(app: Flask) -> None:
    """Bind Flask-SQLAlchemy with per-dialect options and create tables lazily."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = engine_options(uri)
    options.update(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    with app.app_context():
        engine: Engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
    app.extensions["crumby.schema"] = {"lock": threading.Lock(), "ready": False}

    @app.before_request
    def _schema_on_first_request() -> None:
        ensure_schema()


def describe(exc: BaseException) -> str:
    """One line about a database failure, without SQL or a traceback."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:300]


def ensure_schema(app: Flask | None = None) -> None:
    """Create missing tables and run pending migrations, once per process."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions["crumby.schema"]
    if state["ready"]:
        return
    with state["lock"]:
        if state["ready"]:
            return
        with app.app_context():
            try:
                _upgrade(db.engine)
            except SQLAlchemyError as exc:
                # Another worker may have created the tables at the same moment: look again.
                try:
                    _upgrade(db.engine)
                except SQLAlchemyError:
                    url = db.engine.url.render_as_string(hide_password=True)
                    raise DatabaseError(f"database {url}: {describe(exc)}") from None
        state["ready"] = True


def current_version(connection: Connection) -> int | None:
    """The stored schema version, or None for a database Crumby has not set up."""
    if not inspect(connection).has_table(models.SchemaVersion.__tablename__):
        return None
    return connection.execute(select(models.SchemaVersion.version)).scalar()


def _upgrade(engine: Engine) -> None:
    with engine.begin() as connection:
        version = current_version(connection)
        db.metadata.create_all(connection, checkfirst=True)
        if version is None:
            fill_calendar(connection)
            connection.execute(models.SchemaVersion.__table__.delete())
            connection.execute(
                models.SchemaVersion.__table__.insert().values(version=SCHEMA_VERSION)
            )
            return
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step - 1](connection)
        if version != SCHEMA_VERSION:
            connection.execute(
                models.SchemaVersion.__table__.update().values(version=SCHEMA_VERSION)
            )


def fill_hosts(connection: Connection, chunk: int = 5000) -> int:
    """Fill doc_host and referrer_host of visits stored before those columns existed."""
    table = models.Visit.__table__
    statement = (
        table.update()
        .where(table.c.id == bindparam("_id"))
        .values(doc_host=bindparam("_doc_host"), referrer_host=bindparam("_referrer_host"))
    )
    changed, after = 0, None
    while True:
        query = select(table.c.id, table.c.doc_uri, table.c.referrer).where(
            table.c.doc_host.is_(None), table.c.referrer_host.is_(None)
        )
        if after is not None:
            query = query.where(table.c.id > after)
        rows = connection.execute(query.order_by(table.c.id).limit(chunk)).all()
        if not rows:
            return changed
        after = rows[-1][0]
        hosts = [(id_, models.url_host(uri), models.url_host(ref)) for id_, uri, ref in rows]
        updates = [
            {"_id": id_, "_doc_host": doc_host, "_referrer_host": referrer_host}
            for id_, doc_host, referrer_host in hosts
            if doc_host or referrer_host
        ]
        if updates:
            connection.execute(statement, updates)
            changed += len(updates)


def fill_calendar(connection: Connection) -> None:
    """Insert every missing day from CALENDAR_START to CALENDAR_END."""
    table = models.Calendar.__table__
    have = {row[0].date() for row in connection.execute(select(table.c.datetime))}
    day, rows = CALENDAR_START, []
    while day <= CALENDAR_END:
        if day not in have:
            rows.append({"datetime": dt.datetime.combine(day, dt.time())})
        day += dt.timedelta(days=1)
    for start in range(0, len(rows), 5000):
        connection.execute(table.insert(), rows[start : start + 5000])
