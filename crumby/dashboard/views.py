"""Dashboard views: thin, they render page shells whose JavaScript reads the JSON API."""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.routing import BuildError

from crumby import __version__, reporting
from crumby.dashboard import bp
from crumby.extensions import login_manager

SCOPES = ("public", "private")


@bp.app_context_processor
def page_helpers() -> dict:
    """Values every page's base.html uses."""
    return {"nav_url": nav_url, "crumby_version": __version__}


def nav_url(endpoint: str) -> str | None:
    """The URL of an endpoint another module may provide, or None while it does not exist."""
    if endpoint not in current_app.view_functions:
        return None
    try:
        return url_for(endpoint)
    except BuildError:
        return None


def api_root() -> str:
    """Where the reporting API lives, honouring a mount point (SCRIPT_NAME)."""
    return request.script_root + "/api"


@bp.get("/")
def index() -> str:
    """The dashboard: headline strip, range picker, every report the user may see."""
    return render_template(
        "dashboard/index.html",
        api_root=api_root(),
        show_private=current_user.is_authenticated,
    )


@bp.get("/reports/<scope>/<name>")
def report(scope: str, name: str):
    """One report on its own page: chart, whole table, CSV, and the SQL for a logged-in user."""

    if scope not in SCOPES:
        abort(404)
    if scope == "private" and not current_user.is_authenticated:
        return login_manager.unauthorized()
    query = reporting.get_query(scope, name)
    if query is None:
        abort(404, description=f"There is no {scope} report named {name!r}.")
    sql = t0 = t1 = None
    if current_user.is_authenticated:
        sql, t0, t1 = _rendered_sql(reporting, query)
    return render_template(
        "dashboard/report.html",
        query=query,
        api_url=f"{api_root()}/{scope}/{name}",
        sql=sql,
        t0=t0,
        t1=t1,
    )


def _rendered_sql(reporting, query) -> tuple[str | None, object, object]:
    """The SQL a query runs for the URL's range (the default range if the URL's is invalid)."""
    from crumby.reporting.reports import render_query

    try:
        t0, t1 = reporting.parse_range(request.args)
    except reporting.RangeError:
        t0, t1 = reporting.parse_range({})
    try:
        return render_query(query, t0, t1).sql, t0, t1
    except reporting.QueryError as exc:  # a broken file still gets its page; the API says why
        current_app.logger.warning("report %s/%s does not render: %s", query.scope, query.name, exc)
        return None, t0, t1


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on pages without a <link rel=icon> (JSON, CSV): the SVG."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)
