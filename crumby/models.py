"""The tables Crumby stores: sites, visits, events, visitor and session days (derived),
goals, funnels, users, API tokens, share links, the calendar, import keys.

Text columns have explicit sizes so that the tracker can truncate over-long
values to fit (see ``column_length``) instead of failing on strict databases.
Datetimes are naive and always UTC.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import urlsplit

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.mysql import BINARY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crumby.extensions import db

#: an auto-incrementing 64-bit id everywhere; SQLite only auto-increments INTEGER
BigId = BigInteger().with_variant(Integer, "sqlite")

#: MySQL/MariaDB tables store full Unicode (emoji in titles) with utf8mb4
MYSQL_TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def utcnow() -> dt.datetime:
    """The current UTC time as a naive datetime, the way every table stores it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


#: the longest host name DNS allows
HOST_LENGTH = 253
#: the longest name a share link may have
SHARE_LABEL_LENGTH = 80


def url_host(url: str | None) -> str | None:
    """The lower-cased host name of a URL (no port, no user), None when it has none.

    Stored beside each page and referrer URL, so that reports group and compare
    hosts without running string functions over every row they read.
    """
    if not url or "//" not in url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    host = (host or "").rstrip(".")
    return host[:HOST_LENGTH] or None


def url_path(url: str | None) -> str | None:
    """The path of a URL without query string or fragment (``/`` for a bare host).

    Reports group pages by it, so that ``?utm_source=...`` links do not split
    one page into many rows.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not parts.scheme and not parts.netloc:
        return parts.path or None
    return parts.path or "/"


#: a view without a referrer, or one whose referrer is a page of the same host
DIRECT = "(direct)"


def without_www(host: str) -> str:
    """A host without its leading ``www.``, as sources are named."""
    return host[4:] if host.startswith("www.") else host


def view_source(
    referrer: str | None, referrer_host: str | None, doc_host: str | None
) -> str | None:
    """Where a view came from: the referring host without ``www.``, or ``(direct)``.

    The same definition as the ``referrers`` report's ``source`` column, so that
    a row of that report, used as a ``source`` filter, matches what it counts:
    no referrer is ``(direct)``; a referrer of the page's own host (a link
    within the site, say in a tab left open past a session's end) is too; a
    referrer without a host that can be read is None.
    """
    if not referrer:
        return DIRECT
    if referrer_host is None:
        return None
    if referrer_host == doc_host:
        return DIRECT
    return without_www(referrer_host)


class Site(db.Model):
    """A registered host name whose hits Crumby stores, with its time zone and visibility."""

    __tablename__ = "sites"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(HOST_LENGTH), unique=True, nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", nullable=False)
    public: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: bumped by every change that rewrites stored data (deletions, a time zone change), so
    #: that cached report results of the site are never served after it
    data_version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


#: ``sort_order`` of columns kept after a table's own (``SessionAttributes``)
LAST = 100


class SessionAttributes:
    """The attributes of a session, those of its entry view, carried by every row of it.

    Views (``Visit``) and events (``Event``) both store them, so that a report
    filter on where a session came from (its entry page, source, campaign) or
    where and on what it began is a comparison on the row a report reads.
    """

    entry_page: Mapped[str | None] = mapped_column(String(2048), sort_order=LAST)
    entry_source: Mapped[str | None] = mapped_column(String(HOST_LENGTH), sort_order=LAST)
    entry_utm_source: Mapped[str | None] = mapped_column(String(255), sort_order=LAST)
    entry_utm_medium: Mapped[str | None] = mapped_column(String(255), sort_order=LAST)
    entry_utm_campaign: Mapped[str | None] = mapped_column(String(255), sort_order=LAST)
    entry_country: Mapped[str | None] = mapped_column(String(2), sort_order=LAST)
    entry_region: Mapped[str | None] = mapped_column(String(128), sort_order=LAST)
    entry_city: Mapped[str | None] = mapped_column(String(128), sort_order=LAST)
    entry_browser: Mapped[str | None] = mapped_column(String(64), sort_order=LAST)
    entry_os: Mapped[str | None] = mapped_column(String(64), sort_order=LAST)
    entry_device: Mapped[str | None] = mapped_column(String(16), sort_order=LAST)
    entry_language: Mapped[str | None] = mapped_column(String(35), sort_order=LAST)


class Visit(SessionAttributes, db.Model):
    """One page view, as recorded by cmb.js and enriched by the server.

    Its session's attributes (``SessionAttributes``) are copied from the
    session's entry view when it is stitched (``crumby.ingest.sessions``).
    """

    __tablename__ = "visits"
    __table_args__ = (
        # every report reads one site's range off this index
        Index("ix_visits_site_datetime", "site_id", "datetime"),
        # id too: the pipeline reads a visitor's newest view, ties broken by id, off this index
        Index("ix_visits_site_cid_datetime", "site_id", "cid", "datetime", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(Integer, nullable=False)
    ip: Mapped[str | None] = mapped_column(String(45))
    cid: Mapped[str | None] = mapped_column(String(64))
    datetime: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    doc_title: Mapped[str | None] = mapped_column(String(512))
    doc_uri: Mapped[str | None] = mapped_column(String(2048))
    #: doc_uri's path without query string or fragment (``url_path``)
    doc_path: Mapped[str | None] = mapped_column(String(2048))
    doc_enc: Mapped[str | None] = mapped_column(String(32))
    referrer: Mapped[str | None] = mapped_column(String(2048))
    referrer_header: Mapped[str | None] = mapped_column("_referrer", String(2048))
    platform: Mapped[str | None] = mapped_column(String(64))
    browser: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(32))
    #: the operating system's version (major.minor), as the User-Agent gives it
    os_version: Mapped[str | None] = mapped_column(String(32))
    device: Mapped[str | None] = mapped_column(String(16))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    screen_res: Mapped[str | None] = mapped_column(String(16))
    screen_depth: Mapped[str | None] = mapped_column(String(16))
    continent: Mapped[str | None] = mapped_column(String(2))
    country: Mapped[str | None] = mapped_column(String(2))
    subdivision_1: Mapped[str | None] = mapped_column(String(128))
    subdivision_2: Mapped[str | None] = mapped_column(String(128))
    city: Mapped[str | None] = mapped_column(String(128))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    accuracy_radius: Mapped[int | None] = mapped_column(Integer)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    lang: Mapped[str | None] = mapped_column(String(35))
    lang_header: Mapped[str | None] = mapped_column("_lang", String(255))
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    utm_term: Mapped[str | None] = mapped_column(String(255))
    utm_content: Mapped[str | None] = mapped_column(String(255))
    #: the hosts of doc_uri and referrer (``url_host``), filled by the ingest pipeline
    doc_host: Mapped[str | None] = mapped_column(String(HOST_LENGTH))
    referrer_host: Mapped[str | None] = mapped_column(String(HOST_LENGTH))
    #: where the view stands in its visitor's session; see ``crumby.sessions``
    session_start: Mapped[dt.datetime | None] = mapped_column(DateTime)
    session_seq: Mapped[int | None] = mapped_column(Integer)
    session_gap: Mapped[float | None] = mapped_column(Double)
    #: seconds until the next view of the session (time on this page), NULL for the
    #: session's last view (its exit); see ``crumby.ingest.exits``
    next_gap: Mapped[float | None] = mapped_column(Double)


class Event(SessionAttributes, db.Model):
    """One ``cmb.event(name, value)`` call.

    Its session's attributes (``SessionAttributes``) are those of the
    visitor's session it falls in, copied by the ingest pipeline
    (``crumby.ingest.eventsessions``); all NULL outside any session.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_site_datetime", "site_id", "datetime"),
        Index("ix_events_site_cid", "site_id", "cid"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(Integer, nullable=False)
    ip: Mapped[str | None] = mapped_column(String(45))
    cid: Mapped[str | None] = mapped_column(String(64))
    datetime: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    doc_title: Mapped[str | None] = mapped_column(String(512))
    doc_uri: Mapped[str | None] = mapped_column(String(2048))
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[str | None] = mapped_column(String(1024))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    #: doc_uri's path (``url_path``): the page the event was sent from
    doc_path: Mapped[str | None] = mapped_column(String(2048))
    #: when the session the event falls in began (its views' ``session_start``), or NULL
    session_start: Mapped[dt.datetime | None] = mapped_column(DateTime)


class VisitorDay(db.Model):
    """A visitor's non-bot page views of one local day on a site, by device and place.

    Derived data, kept by the ingest pipeline (``crumby.ingest.rollups``):
    one row per site, local day (the site's zone, midnight, as ``calendar``
    holds days), visitor and combination of the view columns below, with the
    number of views. Every report that counts distinct visitors or views by
    those columns reads these rows instead of the views: the same answer
    (the pairs of visitor and value are the same), from about one row per
    visitor and day instead of one per view. ``key`` is a 64-bit hash of the
    columns after ``day`` (NULL and '' apart): a short unique key that NULLs
    cannot split.
    """

    __tablename__ = "visitor_days"
    __table_args__ = ({**MYSQL_TABLE_ARGS, "sqlite_with_rowid": False},)

    site_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[dt.datetime] = mapped_column(DateTime, primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    cid: Mapped[str | None] = mapped_column(String(64))
    browser: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(32))
    platform: Mapped[str | None] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(32))
    device: Mapped[str | None] = mapped_column(String(16))
    lang: Mapped[str | None] = mapped_column(String(35))
    screen_res: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    subdivision_1: Mapped[str | None] = mapped_column(String(128))
    city: Mapped[str | None] = mapped_column(String(128))
    views: Mapped[int] = mapped_column(Integer, nullable=False)


class SessionDay(db.Model):
    """The sessions that began on one local day of a site, by their entry's attributes.

    Derived data, kept by the ingest pipeline (``crumby.ingest.rollups``):
    one row per site, local day a session began and combination of the
    session's ``entry_*`` attributes, with the sessions, their second views
    (one-view sessions are ``sessions - continued``) and the seconds between
    their views (their length). ``key`` hashes the ``entry_*`` columns.
    """

    __tablename__ = "session_days"
    __table_args__ = ({**MYSQL_TABLE_ARGS, "sqlite_with_rowid": False},)

    site_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[dt.datetime] = mapped_column(DateTime, primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_page: Mapped[str | None] = mapped_column(String(2048))
    entry_source: Mapped[str | None] = mapped_column(String(HOST_LENGTH))
    entry_utm_source: Mapped[str | None] = mapped_column(String(255))
    entry_utm_medium: Mapped[str | None] = mapped_column(String(255))
    entry_utm_campaign: Mapped[str | None] = mapped_column(String(255))
    entry_country: Mapped[str | None] = mapped_column(String(2))
    entry_region: Mapped[str | None] = mapped_column(String(128))
    entry_city: Mapped[str | None] = mapped_column(String(128))
    entry_browser: Mapped[str | None] = mapped_column(String(64))
    entry_os: Mapped[str | None] = mapped_column(String(64))
    entry_device: Mapped[str | None] = mapped_column(String(16))
    entry_language: Mapped[str | None] = mapped_column(String(35))
    sessions: Mapped[int] = mapped_column(Integer, nullable=False)
    continued: Mapped[int] = mapped_column(Integer, nullable=False)
    seconds: Mapped[float] = mapped_column(Double, nullable=False)


#: goal and funnel names: short labels a person types
GOAL_NAME_LENGTH = 100
#: what a goal matches: an event name (``events.name``) or a page path (``visits.doc_path``)
GOAL_KINDS = ("event", "page")
#: a funnel's steps
FUNNEL_MIN_STEPS, FUNNEL_MAX_STEPS = 2, 8


class Goal(db.Model):
    """A conversion a site counts: an event name or a page path (contract section 9).

    ``target`` is the event name (``kind`` 'event', as long as ``events.name``)
    or the page path (``kind`` 'page', as long as ``visits.doc_path``). Its rows
    go when its site goes (``crumby.sites.delete_site``).
    """

    __tablename__ = "goals"
    __table_args__ = (
        UniqueConstraint("site_id", "name", name="uq_goals_site_name"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(GOAL_NAME_LENGTH), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    target: Mapped[str] = mapped_column(String(2048), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Funnel(db.Model):
    """A named, ordered list of 2 to 8 goals of a site (its steps: ``FunnelStep``)."""

    __tablename__ = "funnels"
    __table_args__ = (
        UniqueConstraint("site_id", "name", name="uq_funnels_site_name"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(GOAL_NAME_LENGTH), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class FunnelStep(db.Model):
    """Step ``position`` (1, 2, ...) of a funnel is a goal.

    ``crumby.goals`` refuses to delete a goal that a funnel uses, naming the
    funnels; the foreign keys cascade only so that a site's deletion (or a
    hand-written DELETE) never trips over the order of its rows.
    """

    __tablename__ = "funnel_steps"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    funnel_id: Mapped[int] = mapped_column(
        ForeignKey("funnels.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    goal_id: Mapped[int] = mapped_column(
        ForeignKey("goals.id", ondelete="CASCADE"), nullable=False, index=True
    )


#: the 16 bytes of an import key: BYTEA, BLOB, and a fixed BINARY(16) on MySQL (a BLOB
#: cannot be a key there)
KeyBytes = LargeBinary(16).with_variant(BINARY(16), "mysql")


class ImportKey(db.Model):
    """One log line stored by ``crumby ingest-log`` or ``crumby syslog`` (``crumby.imports``).

    ``line_key`` is the line's time (4 bytes, seconds since 1970, big-endian)
    followed by 12 bytes of a hash of the site, the raw line and how often the
    same line came before it in its file. The ingest pipeline drops a row
    whose key is already here and adds the keys of the rows it stores, in
    their transaction, so a line imported twice is stored once. Leading with
    the time keeps the index growing at its end as logs come in, in time
    order: random keys would make every insert touch a random page of an
    ever larger index. ``site_id`` lets a deleted site's keys go with it.
    """

    __tablename__ = "import_keys"
    # SQLite: the key is the table (no rowid beside it), a third smaller
    __table_args__ = ({**MYSQL_TABLE_ARGS, "sqlite_with_rowid": False},)

    line_key: Mapped[bytes] = mapped_column(KeyBytes, primary_key=True, autoincrement=False)
    site_id: Mapped[int] = mapped_column(Integer, nullable=False)


class VisitorSalt(db.Model):
    """The secret of one UTC day's anonymous visitor ids (``crumby.ingest.salts``).

    One random salt per day, shared by every process through this table,
    created by the first hit of the day; older days' salts are deleted then
    (VISITOR_SALT_DAYS keeps a few for log imports), so that an id of a past
    day can no longer be recomputed from an address and a User-Agent.
    """

    __tablename__ = "visitor_salts"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True, autoincrement=False)
    salt: Mapped[str] = mapped_column(String(64), nullable=False)


class User(db.Model):
    """Someone who may log in to see private reports."""

    __tablename__ = "users"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    #: a werkzeug password hash (scrypt), never the password itself
    password: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    # Flask-Login's user protocol
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        """Flask-Login's session key: the id and a digest of the password hash, so that
        a password change ends every other session (``crumby.auth.load_user``)."""
        return f"{self.id}:{self.session_key()}"

    def session_key(self) -> str:
        """A short digest of the stored hash: new with every new password."""
        return hashlib.sha256(self.password.encode()).hexdigest()[:20]


class ApiToken(db.Model):
    """A bearer token for the API; only its SHA-256 digest is stored.

    A token may be narrowed: ``site_id`` limits it to one site (reports and
    events of that site only), ``ingest_only`` to sending data (``POST
    /api/events``, ``/collect`` overrides), never reading reports. A token
    with neither acts as its user, everywhere a login works.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: the one site this token may read and send to (None: every site)
    site_id: Mapped[int | None] = mapped_column(Integer)
    #: True: may send events and hits, may not read reports
    ingest_only: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False
    )

    user: Mapped[User] = relationship(back_populates="tokens")


class ShareLink(db.Model):
    """A secret link that shows one site's dashboard read-only, without a login.

    The token is kept as it is (not hashed), unlike an API token: it opens one
    site's reports read-only, and the owner must be able to copy the link
    again from the site's settings page, as with Plausible's shared links.
    Deleting the row revokes the link.
    """

    __tablename__ = "share_links"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    #: what the owner calls it ("for the board"), shown in the list only
    label: Mapped[str] = mapped_column(String(SHARE_LABEL_LENGTH), default="", nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Calendar(db.Model):
    """One row per date (midnight), so reports can show days without visits."""

    __tablename__ = "calendar"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    datetime: Mapped[dt.datetime] = mapped_column(DateTime, primary_key=True)


class SchemaVersion(db.Model):
    """The schema version this database is at; see ``crumby.database.MIGRATIONS``."""

    __tablename__ = "crumby_schema"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


def column_length(model: type[db.Model], attribute: str) -> int | None:
    """The declared size of a text column, for truncating input to fit."""
    column = model.__mapper__.columns[attribute]
    return getattr(column.type, "length", None)
