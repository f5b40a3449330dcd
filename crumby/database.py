"""The database connection (tuned by its ``crumby.store`` spec), tables on first use, migrations.

Schema changes are tracked by a one-row ``crumby_schema`` table rather than
Alembic: Crumby owns its few tables, upgrades must run unattended on the
user's server at start-up (no migration folder to ship or command to
remember), and each step is a small function that runs on every dialect.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Boolean, Connection, bindparam, false, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from crumby import models
from crumby.extensions import db
from crumby.store import deadlines, spec_for_uri, spec_of

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


def _v2_hosts_and_sessions(connection: Connection) -> None:
    """Version 2: page and referrer hosts, and session columns (stitched by version 3)."""
    _add_columns(
        connection,
        "visits",
        ["doc_host", "referrer_host", "session_start", "session_seq", "session_gap"],
    )
    fill_hosts(connection)


#: indexes of versions 1 and 2, replaced by ones that lead with site_id
_OLD_INDEXES = {
    "visits": ("ix_visits_datetime", "ix_visits_cid_datetime"),
    "events": ("ix_events_datetime", "ix_events_cid"),
}
#: where rows whose page has no host go when the database holds several sites
UNATTRIBUTED_HOST = "unattributed.invalid"


def _v3_sites(connection: Connection) -> None:
    """Version 3: sites, a site on every row, page paths, indexes that lead with the site.

    Every host found in the pages' URLs becomes a site (``www.`` folded; UTC,
    private, as contract section 5 says). An event without a page URL goes to
    its visitor's site, a row with no host at all to the only site, or to
    ``unattributed.invalid`` when there are several: nothing is lost.
    Sessions are re-stitched per site by ``_session_attributes``, a later step
    that stitches every view again anyway (the stitching code is today's, and
    needs that step's columns).
    """
    from crumby.sites.registry import fold_host

    spec = spec_of(connection)
    _add_columns(connection, "visits", ["site_id", "doc_path"])
    _add_columns(connection, "events", ["site_id"])
    visits, events, sites = (db.metadata.tables[n] for n in ("visits", "events", "sites"))
    hosts = {
        fold_host(host)
        for (host,) in connection.execute(select(visits.c.doc_host).distinct())
        if host
    }
    for (uri,) in connection.execute(select(events.c.doc_uri).distinct()):
        if models.url_host(uri):
            hosts.add(fold_host(models.url_host(uri)))  # type: ignore[arg-type]
    known = {host for (host,) in connection.execute(select(sites.c.host))}
    for host in sorted(hosts - known):
        connection.execute(
            sites.insert().values(
                host=host[: models.HOST_LENGTH],
                timezone="UTC",
                public=False,
                created_at=models.utcnow(),
                data_version=0,
            )
        )
    site_of = {host: id_ for id_, host in connection.execute(select(sites.c.id, sites.c.host))}
    fallback = _fallback_site(connection, site_of)
    # visits: by page host, in chunks of ids; their path too
    _fill_in_chunks(
        connection,
        visits,
        (visits.c.doc_uri, visits.c.doc_host),
        lambda uri, host: {
            "_site": site_of.get(fold_host(host)) if host else None,
            "_path": models.url_path(uri),
        },
        {"site_id": bindparam("_site"), "doc_path": bindparam("_path")},
        fallback,
    )
    _fill_in_chunks(
        connection,
        events,
        (events.c.doc_uri,),
        lambda uri: {"_site": site_of.get(fold_host(models.url_host(uri) or ""))},
        {"site_id": bindparam("_site")},
        None,
    )
    # events without a page: their visitor's site, else the fallback
    orphans = (
        connection.execute(
            select(events.c.cid)
            .where(events.c.site_id.is_(None), events.c.cid.is_not(None))
            .distinct()
        )
        .scalars()
        .all()
    )
    for cid in orphans:
        site_id = connection.execute(
            select(visits.c.site_id).where(visits.c.cid == cid).order_by(visits.c.id).limit(1)
        ).scalar()
        if site_id is not None:
            connection.execute(
                events.update()
                .where(events.c.cid == cid, events.c.site_id.is_(None))
                .values(site_id=site_id)
            )
    if connection.execute(select(events.c.id).where(events.c.site_id.is_(None)).limit(1)).first():
        fallback = fallback or _fallback_site(connection, site_of, force=True)
        connection.execute(
            events.update().where(events.c.site_id.is_(None)).values(site_id=fallback)
        )
    stored = {
        table: {i["name"] for i in inspect(connection).get_indexes(table)} for table in _OLD_INDEXES
    }
    for table, names in _OLD_INDEXES.items():
        for name in names:
            if name in stored[table]:
                spec.drop_index(connection, table, name)
        for index in db.metadata.tables[table].indexes:
            if index.name not in stored[table]:
                index.create(connection)
    for table in ("visits", "events"):
        kind = db.metadata.tables[table].c.site_id.type.compile(dialect=connection.dialect)
        spec.require_column(connection, table, "site_id", kind)


def _fallback_site(
    connection: Connection, site_of: dict[str, int], force: bool = False
) -> int | None:
    """The site for rows without a host: the only site, or ``unattributed.invalid``."""
    has_hostless = (
        force
        or connection.execute(
            select(models.Visit.id).where(models.Visit.doc_host.is_(None)).limit(1)
        ).first()
    )
    if not has_hostless:
        return None
    if len(site_of) == 1:
        return next(iter(site_of.values()))
    if UNATTRIBUTED_HOST not in site_of:
        connection.execute(
            models.Site.__table__.insert().values(
                host=UNATTRIBUTED_HOST,
                timezone="UTC",
                public=False,
                created_at=models.utcnow(),
                data_version=0,
            )
        )
        site_of[UNATTRIBUTED_HOST] = connection.execute(
            select(models.Site.id).where(models.Site.host == UNATTRIBUTED_HOST)
        ).scalar_one()
    return site_of[UNATTRIBUTED_HOST]


def _fill_in_chunks(
    connection: Connection,
    table: Any,
    columns: tuple[Any, ...],
    compute: Callable[..., dict[str, Any]],
    values: dict[str, Any],
    fallback: int | None,
    chunk: int = 5000,
) -> None:
    """Fill new columns of every row, ``chunk`` rows per statement, walking the primary key."""
    statement = table.update().where(table.c.id == bindparam("_id")).values(**values)
    after = None
    while True:
        query = select(table.c.id, *columns).order_by(table.c.id).limit(chunk)
        if after is not None:
            query = query.where(table.c.id > after)
        rows = connection.execute(query).all()
        if not rows:
            return
        after = rows[-1][0]
        updates = []
        for id_, *cells in rows:
            update = compute(*cells)
            if "_site" in update and update["_site"] is None:
                update["_site"] = fallback
            updates.append({"_id": id_, **update})
        connection.execute(statement, updates)


def _v4_import_keys(connection: Connection) -> None:
    """Version 4: ``import_keys``, the lines log imports stored (``crumby.imports``)."""
    db.metadata.tables["import_keys"].create(connection, checkfirst=True)


def _v5_token_scopes(connection: Connection) -> None:
    """Token scopes: ``api_tokens.site_id`` and ``api_tokens.ingest_only``.

    Existing tokens keep what they could do: no site limit, not ingest-only.
    Safe to run on a table that has the columns already.
    """
    have = {column["name"] for column in inspect(connection).get_columns("api_tokens")}
    _add_columns(connection, "api_tokens", ["site_id"])
    if "ingest_only" not in have:
        preparer = connection.dialect.identifier_preparer
        kind = Boolean().compile(dialect=connection.dialect)
        default = false().compile(dialect=connection.dialect)
        connection.exec_driver_sql(
            f"ALTER TABLE {preparer.quote('api_tokens')} ADD COLUMN "
            f"{preparer.quote('ingest_only')} {kind} NOT NULL DEFAULT {default}"
        )


def _next_gaps(connection: Connection) -> None:
    """``visits.next_gap``: each view's time until its session's next view (NULL: an exit).

    Filled for the views stored before, visitor by visitor (``exits.relink_all``).
    """
    from crumby.ingest.exits import relink_all

    _add_columns(connection, "visits", ["next_gap"])
    relink_all(connection)


def _goals_and_funnels(connection: Connection) -> None:
    """Goals and funnels (contract section 9): ``goals``, ``funnels``, ``funnel_steps``.

    New tables only; ``checkfirst`` makes it safe wherever they exist already.
    """
    for name in ("goals", "funnels", "funnel_steps"):
        db.metadata.tables[name].create(connection, checkfirst=True)


def _v6_visitor_salts(connection: Connection) -> None:
    """``visitor_salts``: the daily salts of anonymous visitor ids (``crumby.ingest.salts``).

    Ids stored before were made with SECRET_KEY (or a key per process); they
    stay as they are: only new hits get ids from the day's salt.
    """
    db.metadata.tables["visitor_salts"].create(connection, checkfirst=True)


def _session_attributes(connection: Connection) -> None:
    """Each view carries its session's attributes (filters, contract section 9).

    ``entry_page``, ``entry_source`` and ``entry_utm_*`` are added and filled
    by re-stitching every visitor's views, 500 visitors per statement (and
    views without a visitor id in chunks of rows), so that filtering by a
    session attribute never has to find a session's entry view.
    """
    from crumby.ingest.sessions import ENTRY_COLUMNS, restitch

    _add_columns(connection, "visits", list(ENTRY_COLUMNS))
    restitch(connection, everything=True)


def _share_links(connection: Connection) -> None:
    """``share_links``: secret links to a site's dashboard (``crumby.sharing``). A new table."""
    db.metadata.tables["share_links"].create(connection, checkfirst=True)


def _os_versions(connection: Connection) -> None:
    """``visits.os_version``: the OS's version, for the operating systems report's
    ``versions=on``. Views stored before it have none (shown as an empty version)."""
    _add_columns(connection, "visits", ["os_version"])


def _event_sessions(connection: Connection) -> None:
    """Each event carries its page path and its session's start and attributes.

    ``events.doc_path``, ``events.session_start`` and ``events.entry_*`` are
    added (for filters on events, and funnels); paths are filled in chunks of
    rows, the session columns visitor by visitor (``reattribute_all``).
    """
    from crumby.ingest.eventsessions import COPIED, reattribute_all

    events = db.metadata.tables["events"]
    _add_columns(connection, "events", ["doc_path", *COPIED])
    _fill_in_chunks(
        connection,
        events,
        (events.c.doc_uri,),
        lambda uri: {"_path": models.url_path(uri)},
        {"doc_path": bindparam("_path")},
        None,
    )
    reattribute_all(connection)


def _rollups(connection: Connection) -> None:
    """``visitor_days`` and ``session_days``: the views folded per local day, derived from them
    (``crumby.ingest.rollups``); built here for every site's stored views."""
    from crumby.ingest import rollups
    from crumby.sites import all_sites

    for rollup in rollups.ROLLUPS:
        rollup.table.create(connection, checkfirst=True)
    for site in all_sites(connection):
        rollups.rebuild(connection, site.id, site.timezone)


#: each step upgrades version N to N+1; a fresh database is created at the newest
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v2_hosts_and_sessions,
    _v3_sites,
    _v4_import_keys,
    _v5_token_scopes,
    _next_gaps,
    _goals_and_funnels,
    _v6_visitor_salts,
    _session_attributes,
    _share_links,
    _os_versions,
    _event_sessions,
    _rollups,
]
SCHEMA_VERSION = 1 + len(MIGRATIONS)


class DatabaseError(Exception):
    """The database is unreachable or refused the schema; the message is one line."""


def init_app(app: Flask) -> None:
    """Bind Flask-SQLAlchemy with per-dialect options and create tables lazily."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    spec = spec_for_uri(uri)
    options = spec.engine_options(uri)
    options.update(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    with app.app_context():
        spec.install(db.engine)
    app.extensions["crumby.schema"] = {"lock": threading.Lock(), "ready": False}

    @app.before_request
    def _schema_on_first_request() -> None:
        ensure_schema()


def describe(exc: BaseException) -> str:
    """One line about a database failure, without SQL or a traceback."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:300]


def ensure_schema(app: Flask | None = None, wait: float | None = None) -> None:
    """Create missing tables and run pending migrations, once per process.

    The upgrade runs in a thread of its own, to its end, whoever started it;
    the caller waits at most ``wait`` seconds (by default what is left of the
    current request deadline, forever outside one), so that the first hit or
    page of a new process against a frozen database answers 503 in time
    instead of holding its worker. DatabaseError if the tables are not ready.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions["crumby.schema"]
    if state["ready"]:
        return
    with state["lock"]:
        job = state.get("job")
        if job is None or job.pid != os.getpid() or job.error is not None:
            job = state["job"] = _SchemaJob(app, state)
    if not job.done.wait(deadlines.remaining() if wait is None else wait):
        url = job.url
        raise DatabaseError(f"database {url}: no answer while checking the tables")
    if job.error is not None:
        raise job.error


class _SchemaJob:
    """One run of the upgrade, in its own thread, that every waiting caller shares."""

    def __init__(self, app: Flask, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self.pid = os.getpid()
        self.done = threading.Event()
        self.error: DatabaseError | None = None
        with app.app_context():
            self.url = db.engine.url.render_as_string(hide_password=True)
        threading.Thread(target=self.run, name="crumby-schema", daemon=True).start()

    def run(self) -> None:
        # an upgrade runs to its end even when a short request (a report, /readyz) started it
        try:
            with self.app.app_context(), deadlines.suspended():
                try:
                    _upgrade(db.engine)
                except SQLAlchemyError:
                    # Another worker may have created the tables at the same moment: look again.
                    _upgrade(db.engine)
            self.state["ready"] = True
        except SQLAlchemyError as exc:
            self.error = DatabaseError(f"database {self.url}: {describe(exc)}")
        except Exception as exc:  # noqa: BLE001 - whatever it was, the callers must hear of it
            self.app.logger.exception("checking the tables failed")
            self.error = DatabaseError(f"database {self.url}: {type(exc).__name__}: {exc}")
        finally:
            self.done.set()


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
