"""Which site a report request is about, and whether the caller may see it (sections 6 and 8)."""

from __future__ import annotations

from collections.abc import Mapping

from flask_login import current_user

from crumby.extensions import db
from crumby.sites import SiteInfo, all_sites, find_site


class SiteChoiceError(Exception):
    """The request names no usable site: ``status`` is 400 or 404; the message is one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def choose_site(args: Mapping[str, str]) -> SiteInfo:
    """The site of ``?site=HOST``; without it, the only registered site.

    With several sites and no ``site`` parameter the request is ambiguous
    (400 naming the parameter); an unknown host is 404.
    """
    host = args.get("site")
    with db.engine.connect() as connection:
        if host is not None:
            site = find_site(connection, host)
            if site is None:
                raise SiteChoiceError(404, f"no such site: {host[:253]}")
            return site
        sites = all_sites(connection)
    if len(sites) == 1:
        return sites[0]
    if not sites:
        raise SiteChoiceError(404, "no site is registered yet (crumby addsite HOST)")
    raise SiteChoiceError(
        400, "several sites are registered: name one with the site parameter (?site=HOST)"
    )


def may_see(site: SiteInfo, scope: str) -> bool:
    """Public queries of a public site are for anyone; everything else needs a login or token."""
    return (scope == "public" and site.public) or bool(current_user.is_authenticated)
