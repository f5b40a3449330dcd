"""Secret share links: one site's dashboard, read-only, for whoever holds the link.

A share link is a random token in a URL (``/share/<token>``), as Plausible's
shared links are. It opens that site's dashboard, its report pages and the
API calls they make (public and private reports of that site only), with no
login; it changes nothing. Deleting the link revokes it at once: every
request looks the token up again. Responses to a request carrying a valid
token are marked ``noindex`` (``X-Robots-Tag`` and a robots meta tag).

Requests carry the token as the ``share`` parameter (the dashboard adds it to
every API URL and link it builds) or in the ``/share/<token>`` path.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from flask import Flask, Response, g, has_request_context, request
from sqlalchemy import Connection, delete, select

from crumby.models import SHARE_LABEL_LENGTH, ShareLink, Site, utcnow
from crumby.sites import SiteInfo

#: the query parameter (and path part) a share token travels in
PARAMETER = "share"
#: longer than any token ``create_share`` makes; longer input is not looked up at all
MAX_TOKEN = 64
ROBOTS = "noindex, nofollow"


class ShareError(ValueError):
    """A share link that cannot be made or removed; the message is one line."""


@dataclass(frozen=True)
class ShareInfo:
    """One share link as listed on the site's settings page."""

    id: int
    token: str
    label: str
    created_at: dt.datetime


def create_share(connection: Connection, site: SiteInfo, label: str = "") -> ShareInfo:
    """A new link for ``site``; ``label`` is the owner's note (at most 80 characters)."""
    label = (label or "").strip()
    if len(label) > SHARE_LABEL_LENGTH:
        raise ShareError(f"the name is longer than {SHARE_LABEL_LENGTH} characters")
    if any(not ch.isprintable() for ch in label):
        raise ShareError("the name must not contain control characters")
    token = secrets.token_urlsafe(24)  # 192 random bits, 32 URL-safe characters
    created = utcnow()
    result = connection.execute(
        ShareLink.__table__.insert().values(
            site_id=site.id, token=token, label=label, created_at=created
        )
    )
    return ShareInfo(result.inserted_primary_key[0], token, label, created)


def list_shares(connection: Connection, site: SiteInfo) -> list[ShareInfo]:
    """The site's links, oldest first."""
    rows = connection.execute(
        select(ShareLink.id, ShareLink.token, ShareLink.label, ShareLink.created_at)
        .where(ShareLink.site_id == site.id)
        .order_by(ShareLink.id)
    )
    return [ShareInfo(*row) for row in rows]


def revoke_share(connection: Connection, site: SiteInfo, share_id: int) -> None:
    """Delete one of the site's links; ShareError if the site has no such link."""
    gone = connection.execute(
        delete(ShareLink).where(ShareLink.id == share_id, ShareLink.site_id == site.id)
    ).rowcount
    if not gone:
        raise ShareError("there is no such share link for this site (revoked already?)")


def site_for_token(connection: Connection, token: str | None) -> SiteInfo | None:
    """The site a share token opens, or None for an unknown, revoked or malformed token."""
    if not token or len(token) > MAX_TOKEN or not token.isascii() or not token.isprintable():
        return None
    row = connection.execute(
        select(ShareLink.token, Site.id, Site.host, Site.timezone, Site.public, Site.data_version)
        .join(Site, Site.id == ShareLink.site_id)
        .where(ShareLink.token == token)
    ).first()
    # some collations compare case-insensitively: the token must match exactly
    if row is None or not secrets.compare_digest(row[0], token):
        return None
    return SiteInfo(row[1], row[2], row[3], bool(row[4]), row[5])


def request_token() -> str | None:
    """The share token this request carries, in its path or its ``share`` parameter."""
    return (request.view_args or {}).get("share_token") or request.args.get(PARAMETER)


def shared_site() -> SiteInfo | None:
    """The site the request's valid share token opens (looked up once per request), or None."""
    if "crumby_shared_site" not in g:
        token = request_token()
        site = None
        if token:
            from crumby.extensions import db

            with db.engine.connect() as connection:
                site = site_for_token(connection, token)
        g.crumby_shared_site = site
    return g.crumby_shared_site


def shares(site: SiteInfo) -> bool:
    """Does the request hold a valid share link for ``site``?"""
    shared = shared_site()
    return shared is not None and shared.id == site.id


def _mark_noindex(response: Response) -> Response:
    """A response to a share URL (valid or not) is not for search engines or shared caches."""
    if request_token():
        response.headers["X-Robots-Tag"] = ROBOTS
        response.headers["Cache-Control"] = "private, no-store"
    return response


def _template_values() -> dict[str, bool]:
    """``noindex`` for base.html's robots meta tag."""
    return {"noindex": has_request_context() and bool(request_token())}


def init_app(app: Flask) -> None:
    """Install the hooks that mark shared responses ``noindex`` (header and meta tag)."""
    app.after_request(_mark_noindex)
    app.context_processor(_template_values)
