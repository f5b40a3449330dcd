"""Dashboard views: thin, they render page shells whose JavaScript reads the JSON API."""

from __future__ import annotations

import datetime as dt

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


#: the public query whose one row is the headline strip rather than a card
HEADLINE_QUERY = "summary"


def dashboard_reports() -> list[tuple[reporting.Query, str]]:
    """(query, chart) for each report the current user may see, in (order, name) order."""
    scopes = SCOPES if current_user.is_authenticated else ("public",)
    queries = [q for scope in scopes for q in reporting.list_queries(scope)]
    queries = [q for q in queries if (q.scope, q.name) != ("public", HEADLINE_QUERY)]
    queries.sort(key=lambda q: (q.order, q.name))  # stable: public before private on a tie
    # the chart each card will show (declared, or inferred once per file version)
    return [(q, reporting.listed_chart(q)) for q in queries]


def page_range(args) -> tuple[dt.date, dt.date] | None:
    """The range dashboard.js will ask the API for, computed the same way, or None if unclear.

    Only used to let the browser start the API calls early (<link rel=preload>);
    the API itself validates every range.
    """
    today = dt.datetime.now(dt.UTC).date()
    if args.get("from") or args.get("to"):
        try:
            t0, t1 = dt.date.fromisoformat(args["from"]), dt.date.fromisoformat(args["to"])
        except (KeyError, ValueError):
            return None
        return (t0, t1) if t0 <= t1 else None
    days = args.get("days", "30")
    if not days.isdigit() or not 0 < int(days) <= 36600:
        days = "30"
    return today - dt.timedelta(days=int(days) - 1), today


def preload_urls(urls: list[str], rng: tuple[dt.date, dt.date] | None) -> list[str]:
    """The API URLs exactly as dashboard.js requests them for the page's range."""
    if rng is None:
        return []
    return [f"{url}?from={rng[0].isoformat()}&to={rng[1].isoformat()}" for url in urls]


@bp.get("/")
def index() -> str:
    """The dashboard: headline strip, range picker, every report the user may see.

    The list of reports is rendered here rather than fetched by the page, which
    saves the browser a round trip before the reports' own API calls start.
    """
    has_headline = reporting.get_query("public", HEADLINE_QUERY) is not None
    reports = dashboard_reports()
    root = api_root()
    urls = [f"{root}/{q.scope}/{q.name}" for q, _chart in reports]
    rng = page_range(request.args)
    preload = preload_urls(urls, rng)
    if has_headline and rng is not None:
        summary = f"{root}/public/{HEADLINE_QUERY}"
        length = rng[1] - rng[0] + dt.timedelta(days=1)
        preload += preload_urls([summary], rng)
        preload += preload_urls([summary], (rng[0] - length, rng[0] - dt.timedelta(days=1)))
    return render_template(
        "dashboard/index.html",
        api_root=root,
        reports=reports,
        has_headline=has_headline,
        preload=preload,
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
    api_url = f"{api_root()}/{scope}/{name}"
    return render_template(
        "dashboard/report.html",
        query=query,
        api_url=api_url,
        preload=preload_urls([api_url], page_range(request.args)),
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
