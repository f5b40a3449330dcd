"""Share links, embeddable cards and the installation check (the site settings page's parts).

- ``/share/<token>``: the site's whole dashboard, read-only, no login; a revoked
  or unknown token is 404. Made and revoked on ``/sites/<host>`` (CSRF forms).
- ``/embed/<host>`` (public sites) and ``/share/<token>/embed``: a small card of
  the last 30 days (visitors, page views, a trend line), rendered on the
  server (no script), and the only pages other sites may put in an iframe.
- ``/sites/<host>/verify``: has a hit from the site arrived? JSON for the
  settings page's button, a message on the page without JavaScript.
"""

from __future__ import annotations

import datetime as dt

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import Length

from crumby import clock, reporting, sharing
from crumby.dashboard import bp
from crumby.dashboard.sitepages import site_or_404
from crumby.errors import json_error
from crumby.extensions import db
from crumby.models import SHARE_LABEL_LENGTH, Event, Visit
from crumby.security import allow_framing
from crumby.sites import SiteInfo, find_site

#: the days an embedded card covers, ending today in the site's time zone
CARD_DAYS = 30


class ShareForm(FlaskForm):
    """A new share link: an optional name that says who it is for."""

    label = StringField(
        "Name (optional)",
        validators=[Length(max=SHARE_LABEL_LENGTH)],
        render_kw={"placeholder": "For the team board", "autocomplete": "off"},
    )


class RevokeForm(FlaskForm):
    """The CSRF token of a revoke button."""


def share_url(token: str) -> str:
    """The full address of a share link, to copy."""
    return url_for("dashboard.shared_dashboard", share_token=token, _external=True)


def embed_url(site: SiteInfo, token: str | None = None) -> str:
    """The full address of a site's embeddable card (through a share link for a private site)."""
    if token:
        return url_for("dashboard.shared_embed", share_token=token, _external=True)
    return url_for("dashboard.embed_card", host=site.host, _external=True)


def iframe_code(url: str, host: str) -> str:
    """The line an owner pastes into another page to show the card."""
    return (
        f'<iframe src="{url}" title="{host} visitors (Crumby)" width="320" height="180" '
        'loading="lazy"></iframe>'
    )


# ---- the shared dashboard and the cards --------------------------------------------------


@bp.get("/share/<share_token>")
def shared_dashboard(share_token: str):
    """The dashboard of the link's site, as its owner sees it, without a login."""
    site = sharing.shared_site()
    if site is None:
        abort(404, description="This share link does not exist, or it has been revoked.")
    from crumby.dashboard.views import index

    return index()


def card_figures(site: SiteInfo) -> dict:
    """Visitors and page views over the site's last ``CARD_DAYS`` local days, and a trend line.

    Read from the built-in ``summary`` and ``visits`` reports, so they mean
    what the dashboard's headline and chart show.
    """
    from crumby.dashboard.views import sparkline

    t1 = reporting.today(site.timezone, clock.now())
    t0 = t1 - dt.timedelta(days=CARD_DAYS - 1)
    figures: dict = {"visitors": None, "views": None, "spark": "", "t0": t0, "t1": t1}
    summary = reporting.get_query("public", "summary")
    daily = reporting.get_query("public", "visits")
    try:
        if summary is not None:
            answer = reporting.run_query(summary, site, t0, t1)
            if answer.data:
                row = dict(zip(answer.columns, answer.data[0], strict=False))
                figures["visitors"] = row.get("visitors")
                figures["views"] = row.get("views")
        if daily is not None:
            answer = reporting.run_query(daily, site, t0, t1)
            if "users" in answer.columns:
                column = answer.columns.index("users")
                figures["spark"] = sparkline([r[column] or 0 for r in answer.data], 280, 40)
    except reporting.QueryError as exc:
        current_app.logger.warning("embed card of %s: %s", site.host, exc)
    return figures


def _card(site: SiteInfo, dashboard: str | None) -> Response:
    html = render_template(
        "dashboard/embed.html", site=site, figures=card_figures(site), dashboard=dashboard
    )
    response = allow_framing(Response(html, mimetype="text/html"))
    response.headers["X-Robots-Tag"] = sharing.ROBOTS
    response.headers.setdefault("Cache-Control", "public, max-age=300")
    return response


@bp.get("/embed/<host>")
def embed_card(host: str) -> Response:
    """A public site's card for an iframe on any page; a private site's is 404 (use a share)."""
    with db.engine.connect() as connection:
        site = find_site(connection, host)
    if site is None or not site.public:
        abort(404, description="There is no public site by that name.")
    return _card(site, url_for("dashboard.index", site=site.host, _external=True))


@bp.get("/share/<share_token>/embed")
def shared_embed(share_token: str) -> Response:
    """The card of a share link's site (private sites too), framable anywhere."""
    site = sharing.shared_site()
    if site is None:
        abort(404, description="This share link does not exist, or it has been revoked.")
    return _card(site, share_url(share_token))


# ---- the settings page's forms -----------------------------------------------------------


def settings_extras(site: SiteInfo) -> dict:
    """What the site's settings page shows besides its form: share links, embed code, status."""
    with db.engine.connect() as connection:
        links = sharing.list_shares(connection, site)
    from crumby.dashboard.views import snippet

    return {
        "this_site": site,
        "snippet": snippet(site),
        "shares": [(link, share_url(link.token)) for link in links],
        "share_form": ShareForm(formdata=None),
        "revoke_form": RevokeForm(formdata=None),
        "embed_url": embed_url(site) if site.public else None,
        "embed_code": iframe_code(embed_url(site), site.host) if site.public else None,
        "iframe_code": iframe_code,
        "embed_url_for": embed_url,
    }


@bp.post("/sites/<host>/shares")
@login_required
def create_share_page(host: str) -> Response | tuple[str, int]:
    """Make a share link for the site and show the page with it at the top of the list."""
    site = site_or_404(host)
    form = ShareForm()
    error = None
    if not form.validate():
        error = " ".join(form.label.errors) or "The form was incomplete: please try again."
    else:
        try:
            with db.engine.begin() as connection:
                link = sharing.create_share(connection, site, form.label.data or "")
        except sharing.ShareError as exc:
            error = str(exc)
    if error:
        from crumby.dashboard.sitepages import settings_page

        return settings_page(site, status=400, share_error=error, share_form=form)
    flash(f"Made a share link: {share_url(link.token)}", "info")
    return redirect(url_for("dashboard.edit_site_page", host=site.host) + "#sharing")


@bp.post("/sites/<host>/shares/<int(max=2147483647):share_id>/revoke")
@login_required
def revoke_share_page(host: str, share_id: int) -> Response:
    """Delete a share link: from now on it answers 404."""
    site = site_or_404(host)
    if not RevokeForm().validate():  # only the CSRF token; a bad one is caught earlier
        abort(400, description="The form was incomplete: please try again.")
    try:
        with db.engine.begin() as connection:
            sharing.revoke_share(connection, site, share_id)
    except sharing.ShareError as exc:
        abort(404, description=str(exc))
    flash("Revoked the share link: it no longer opens the dashboard.", "info")
    return redirect(url_for("dashboard.edit_site_page", host=site.host) + "#sharing")


# ---- has the tracker been installed? -----------------------------------------------------


def last_hit(site: SiteInfo, bots: bool = True) -> dt.datetime | None:
    """When the site's newest page view or event was stored (UTC), or None before the first.

    ``bots=False`` leaves out hits flagged as bots (which reports leave out too).
    """
    with db.engine.connect() as connection:
        newest = []
        for model in (Visit, Event):
            query = select(func.max(model.datetime)).where(model.site_id == site.id)
            if not bots:
                query = query.where(model.is_bot.is_(False))
            newest.append(connection.scalar(query))
    found = [when for when in newest if when is not None]
    return max(found) if found else None


def verdict(site: SiteInfo) -> dict:
    """What the check found, in words for the page and fields for a script."""
    when = last_hit(site, bots=False)
    bot = last_hit(site) if when is None else None
    if bot is not None:
        when = bot
        message = (
            f"A hit from {site.host} arrived at {bot:%Y-%m-%d %H:%M} UTC, but from a bot or a "
            "script, which reports leave out: open one of the pages in a browser, then check again."
        )
    elif when is None:
        message = (
            f"No hit from {site.host} has arrived yet. Check that the script line is in the "
            "pages' <head>, open one of them, then check again."
        )
    else:
        message = f"It works: the latest hit from {site.host} arrived at {when:%Y-%m-%d %H:%M} UTC."
    return {
        "site": site.host,
        "arrived": when is not None,
        "bots_only": bot is not None,
        "last_hit": when.isoformat() + "Z" if when else None,
        "message": message,
    }


@bp.get("/sites/<host>/verify")
def verify_installation(host: str) -> Response:
    """The "verify installation" button: JSON for its script, a flashed line without one."""
    wants_page = request.accept_mimetypes.best == "text/html" or "json" not in (
        request.accept_mimetypes.best or ""
    )
    if not current_user.is_authenticated:
        if wants_page:
            from crumby.extensions import login_manager

            return login_manager.unauthorized()
        return json_error(401, "authentication required: log in to check a site's installation")
    with db.engine.connect() as connection:
        site = find_site(connection, host)
    if site is None:
        if wants_page:
            abort(404, description=f"There is no site {host[:253]!r}.")
        return json_error(404, f"no such site: {host[:253]}")
    found = verdict(site)
    if not wants_page:
        response = jsonify(found)
        response.headers["Cache-Control"] = "no-store"
        return response
    flash(found["message"], "info")
    return redirect(url_for("dashboard.edit_site_page", host=site.host) + "#installation")
