"""Registering, changing and removing sites, and finding the site a hit belongs to.

A site is a plain host name (contract section 8). ``www.example.org`` and
``example.org`` are one site: hosts are stored without ``www.`` and page
hosts are folded the same way before they are looked up.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.engine import Engine

from crumby.models import (
    HOST_LENGTH,
    ApiToken,
    Event,
    Funnel,
    FunnelStep,
    Goal,
    ImportKey,
    ShareLink,
    Site,
    Visit,
    utcnow,
)
from crumby.sites import localtime
from crumby.sites.info import SiteInfo

#: a DNS name: dot-separated labels of letters, digits and inner hyphens
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
#: rows deleted per statement when a site goes
DELETE_CHUNK = 10_000


class SiteError(ValueError):
    """A site command or form got something it cannot use; the message is one line."""


def fold_host(host: str) -> str:
    """The site key of a page host: lower-cased, without a trailing dot or ``www.``."""
    host = host.strip().lower().rstrip(".")
    return host[4:] if host.startswith("www.") and host.count(".") >= 2 else host


def normalize_host(text: str) -> str:
    """A user's host name checked to be plain (no scheme, port, path) and folded."""
    host = (text or "").strip().lower()
    if not host:
        raise SiteError("a site needs a host name, such as example.org")
    if any(c in host for c in "/:@?#[] \t") or len(host) > HOST_LENGTH:
        raise SiteError(
            f"not a plain host name: {text!r} (write it without scheme, port or path, "
            "such as example.org)"
        )
    host = fold_host(host)
    labels = host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise SiteError(f"not a plain host name: {text!r} (letters, digits, hyphens and dots)")
    return host


def check_timezone(name: str) -> str:
    """An IANA time zone name, or SiteError."""
    try:
        localtime.zone(name)
    except localtime.UnknownZone:
        raise SiteError(
            f"unknown timezone: {name!r} (use an IANA name such as Europe/Berlin or UTC)"
        ) from None
    return name


def _info(site: Site) -> SiteInfo:
    return SiteInfo(site.id, site.host, site.timezone, bool(site.public), site.data_version)


def _row_info(row: object) -> SiteInfo:
    id_, host, timezone, public, version = row  # type: ignore[misc]
    return SiteInfo(id_, host, timezone, bool(public), version or 0)


_COLUMNS = (Site.id, Site.host, Site.timezone, Site.public, Site.data_version)


def all_sites(connection: Connection) -> list[SiteInfo]:
    """Every site, by host."""
    return [_row_info(row) for row in connection.execute(select(*_COLUMNS).order_by(Site.host))]


def find_site(connection: Connection, host: str) -> SiteInfo | None:
    """The site registered under ``host`` (folded), or None.

    A host that is not a plain name is still looked up as it is (folded): the
    upgrade from version 1 makes a site of every page host it finds, and those
    include names ``add_site`` refuses, such as ``my_app.internal`` or ``::1``.
    """
    try:
        key = normalize_host(host)
    except SiteError:
        key = fold_host(host or "")
        # no stored host holds a control character (PostgreSQL refuses NUL in text outright)
        if not key or len(key) > HOST_LENGTH or not key.isprintable():
            return None
    row = connection.execute(select(*_COLUMNS).where(Site.host == key)).first()
    return _row_info(row) if row else None


def add_site(
    connection: Connection, host: str, timezone: str = "UTC", public: bool = False
) -> SiteInfo:
    """Register a site; SiteError for a bad host, an unknown zone or a duplicate."""
    key = normalize_host(host)
    check_timezone(timezone)
    if connection.execute(select(Site.id).where(Site.host == key)).first():
        raise SiteError(f"site {key} is already registered")
    connection.execute(
        Site.__table__.insert().values(
            host=key,
            timezone=timezone,
            public=public,
            data_version=0,
            created_at=utcnow(),
        )
    )
    found = find_site(connection, key)
    assert found is not None
    return found


def change_site(
    connection: Connection,
    host: str,
    timezone: str | None = None,
    public: bool | None = None,
) -> SiteInfo:
    """Change a site's zone or visibility; SiteError for an unknown site or zone.

    A new zone changes which local day every stored row falls in. Reports
    work local days out from the UTC datetimes at query time
    (``crumby.reporting.dialects``), so the change applies to all stored data
    at once, except the tables kept by local day: the site's
    rollups are rebuilt (``crumby.ingest.rollups``), after its row is
    locked, so that no batch stored meanwhile is counted under the old zone.
    ``data_version`` moves on so that no cached answer survives it.
    """
    # imported here: the ingest pipeline finds sites through this module
    from crumby.ingest import rollups

    site = find_site(connection, host)
    if site is None:
        raise SiteError(f"no such site: {host}")
    values: dict[str, object] = {}
    if timezone is not None and timezone != site.timezone:
        values["timezone"] = check_timezone(timezone)
    if public is not None and public != site.public:
        values["public"] = public
    if values:
        values["data_version"] = Site.data_version + 1
        connection.execute(select(Site.id).where(Site.id == site.id).with_for_update())
        connection.execute(update(Site).where(Site.id == site.id).values(**values))
        if "timezone" in values:
            rollups.rebuild(connection, site.id, values["timezone"])
    found = find_site(connection, site.host)
    assert found is not None
    return found


def count_rows(connection: Connection, site: SiteInfo) -> tuple[int, int]:
    """How many visits and events a site holds."""
    visits = connection.scalar(select(func.count()).where(Visit.site_id == site.id)) or 0
    events = connection.scalar(select(func.count()).where(Event.site_id == site.id)) or 0
    return visits, events


def delete_site(connection: Connection, host: str) -> tuple[SiteInfo, int, int]:
    """Remove a site with its visits, events, rollups, goals, funnels and import keys;
    returns it and the visits and events deleted.

    API tokens limited to the site and its share links go too. Rows go in chunks of DELETE_CHUNK
    so that no single statement holds a huge transaction's locks; the caller
    commits once at the end.
    """
    from crumby.ingest import rollups  # here: the ingest pipeline imports this module

    site = find_site(connection, host)
    if site is None:
        raise SiteError(f"no such site: {host}")
    counts = []
    for model in (Visit, Event):
        table = model.__table__
        gone = 0
        while True:
            ids = connection.scalars(
                select(table.c.id).where(table.c.site_id == site.id).limit(DELETE_CHUNK)
            ).all()
            if not ids:
                break
            connection.execute(delete(table).where(table.c.id.in_(ids)))
            gone += len(ids)
        counts.append(gone)
    rollups.delete_site(connection, site.id)
    # a token for this site must not pass to a later site that gets the same id
    connection.execute(delete(ApiToken).where(ApiToken.site_id == site.id))
    # the keys of its imported log lines: importing them again after re-adding it stores them
    connection.execute(delete(ImportKey).where(ImportKey.site_id == site.id))
    # its share links: a link must not open a later site that gets the same id
    connection.execute(delete(ShareLink).where(ShareLink.site_id == site.id))
    # its funnels and goals, steps first (goals a funnel uses are otherwise kept)
    funnels = select(Funnel.id).where(Funnel.site_id == site.id)
    connection.execute(delete(FunnelStep).where(FunnelStep.funnel_id.in_(funnels)))
    connection.execute(delete(Funnel).where(Funnel.site_id == site.id))
    connection.execute(delete(Goal).where(Goal.site_id == site.id))
    connection.execute(delete(Site).where(Site.id == site.id))
    return site, counts[0], counts[1]


class Directory:
    """Host -> site for the ingest pipeline, read from the database at most every few seconds.

    A hit for a host missing from the copy re-reads the table (at most once
    per ``MISS_SECONDS``), so a site registered a moment ago by the command
    line in another process starts counting at once; a deleted site stops
    being found within ``MAX_AGE`` seconds.
    """

    MAX_AGE = 5.0
    MISS_SECONDS = 1.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.by_host: dict[str, SiteInfo] = {}
        self.by_id: dict[int, SiteInfo] = {}
        self.loaded = 0.0
        self.missed = 0.0

    def _load(self, connection: Connection, now: float) -> None:
        sites = all_sites(connection)
        self.by_host = {site.host: site for site in sites}
        self.by_id = {site.id: site for site in sites}
        self.loaded = self.missed = now

    def resolve(self, connection: Connection, hosts: Iterable[str | None]) -> SiteInfo | None:
        """The site of the first of ``hosts`` that is registered (each folded), or None."""
        keys = [fold_host(h) for h in hosts if h]
        now = time.monotonic()
        with self.lock:
            if now - self.loaded > self.MAX_AGE:
                self._load(connection, now)
            for key in keys:
                if key in self.by_host:
                    return self.by_host[key]
            if keys and now - self.missed > self.MISS_SECONDS:
                self._load(connection, now)
                self.missed = now
                for key in keys:
                    if key in self.by_host:
                        return self.by_host[key]
        return None
