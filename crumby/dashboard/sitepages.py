"""Managing sites in the web pages: list, add, edit (host, timezone, public), for a logged-in user.

The same rules as the command line (``crumby.sites``): a plain host name, an
IANA zone, private unless asked otherwise. Forms carry CSRF tokens.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from flask import abort, flash, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from crumby.dashboard import bp
from crumby.extensions import db
from crumby.sites import SiteError, SiteInfo, add_site, all_sites, change_site, find_site


class SiteForm(FlaskForm):
    """A site's settings."""

    host = StringField(
        "Host name",
        validators=[DataRequired("Enter the site's host name."), Length(max=253)],
        render_kw={"placeholder": "example.org", "autocomplete": "off", "spellcheck": "false"},
    )
    timezone = StringField(
        "Time zone",
        default="UTC",
        validators=[DataRequired("Choose a time zone."), Length(max=64)],
        render_kw={"list": "timezones", "autocomplete": "off"},
    )
    public = BooleanField("Public: anyone may see its public reports")


@cache
def timezones() -> list[str]:
    """Every IANA zone name this machine knows, for the form's suggestions."""
    return sorted(zoneinfo.available_timezones())


def _page(form: SiteForm, editing: str | None = None, status: int = 200, **extra):
    with db.engine.connect() as connection:
        sites = all_sites(connection)
    template = "dashboard/site_edit.html" if editing else "dashboard/site_admin.html"
    return (
        render_template(
            template, form=form, sites=sites, editing=editing, zones=timezones(), **extra
        ),
        status,
    )


def settings_page(site: SiteInfo, form: SiteForm | None = None, status: int = 200, **extra):
    """A site's settings page: its form, share links, embed code and installation check."""
    from crumby.dashboard.sharepages import settings_extras

    if form is None:
        data = {"host": site.host, "timezone": site.timezone, "public": site.public}
        form = SiteForm(formdata=None, data=data)
    return _page(form, editing=site.host, status=status, **{**settings_extras(site), **extra})


@bp.get("/sites")
@login_required
def sites_admin():
    """Every site, and a form to add one."""
    return _page(SiteForm())


@bp.post("/sites")
@login_required
def add_site_page() -> Response | tuple[str, int]:
    """Register a site from the form."""
    form = SiteForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    try:
        with db.engine.begin() as connection:
            site = add_site(connection, form.host.data, form.timezone.data, form.public.data)
    except SiteError as exc:
        form.host.errors = [*form.host.errors, str(exc)]
        return _page(form, status=400)
    flash(f"Added {site.host}. Put the tracker on its pages to start counting.", "info")
    return redirect(url_for("dashboard.index", site=site.host))


def site_or_404(host: str) -> SiteInfo:
    """The registered site ``host``, or the 404 page saying there is none (every site page)."""
    with db.engine.connect() as connection:
        site = find_site(connection, host)
    if site is None:
        abort(404, description=f"There is no site {host[:253]!r}.")
    return site


@bp.route("/sites/<host>", methods=["GET", "POST"])
@login_required
def edit_site_page(host: str) -> Response | tuple[str, int]:
    """Change a site's time zone or visibility (its host stays: its data is filed under it)."""
    site = site_or_404(host)
    form = SiteForm(data={"host": site.host, "timezone": site.timezone, "public": site.public})
    if not form.is_submitted():
        return settings_page(site, form)
    form.host.data = site.host
    if not form.validate():
        return settings_page(site, form, status=400)
    try:
        with db.engine.begin() as connection:
            change_site(connection, site.host, form.timezone.data, form.public.data)
    except SiteError as exc:
        form.timezone.errors = [*form.timezone.errors, str(exc)]
        return settings_page(site, form, status=400)
    flash(f"Saved {site.host}.", "info")
    return redirect(url_for("dashboard.sites_admin"))
