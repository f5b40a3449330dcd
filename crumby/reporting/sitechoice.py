"""Which site a report request is about, and whether the caller may see it (sections 6 and 8)."""

from __future__ import annotations

from collections.abc import Mapping

from flask_login import current_user

from crumby import sharing
from crumby.auth import bearer_grant
from crumby.extensions import db
from crumby.sites import SiteInfo, all_sites, find_site


class SiteChoiceError(Exception):
    """The request names no usable site: ``status`` is 400 or 404; the message is one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def choose_site(args: Mapping[str, str], site_id: int | None = None) -> SiteInfo:
    """The site of ``?site=HOST``; without it, site ``site_id`` or the only registered site.

    ``site_id`` is the site a limited API token is for. With several sites
    and no ``site`` parameter the request is ambiguous (400 naming the
    parameter); an unknown host is 404.
    """
    host = args.get("site")
    with db.engine.connect() as connection:
        if host is not None:
            site = find_site(connection, host)
            if site is None:
                raise SiteChoiceError(404, f"no such site: {host[:253]}")
            return site
        sites = all_sites(connection)
    if site_id is not None:
        for site in sites:
            if site.id == site_id:
                return site
    if len(sites) == 1:
        return sites[0]
    if not sites:
        raise SiteChoiceError(404, "no site is registered yet (crumby addsite HOST)")
    raise SiteChoiceError(
        400, "several sites are registered: name one with the site parameter (?site=HOST)"
    )


def may_see(site: SiteInfo, scope: str) -> bool:
    """Public queries of a public site are for anyone; everything else needs a login or token.

    A token limited to a site reads only that site (``Grant.may_read``); a share
    link (``?share=``) reads every report of its own site only.
    """
    if (scope == "public" and site.public) or current_user.is_authenticated:
        return True
    if sharing.shares(site):
        return True
    grant = bearer_grant()
    return grant is not None and grant.may_read(site.id)


def token_refusal(site: SiteInfo | None = None) -> str | None:
    """Why the request's bearer token may not read reports (of ``site``), or None.

    An ingest-only token reads nothing; a token limited to a site reads no
    other site. Said with 403: the token is valid, it only does not reach here.
    """
    grant = bearer_grant()
    if grant is None:
        return None
    if grant.ingest_only:
        return "this API token is ingest-only: it may send events but not read reports"
    if site is not None and not grant.may_read(site.id):
        return f"this API token is limited to the site {grant.site_host}"
    return None
