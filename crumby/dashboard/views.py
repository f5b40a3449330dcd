"""Dashboard views: thin, they render page shells whose JavaScript reads the JSON API."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.routing import BuildError

from crumby import __version__, clock, reporting, sharing
from crumby.dashboard import bp
from crumby.extensions import db, login_manager
from crumby.reporting.filters import FilterError, Filters, parse_filters
from crumby.sites import SiteInfo, all_sites, find_site

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


#: how the filter chips name each filter
FILTER_LABELS = {
    "page": "Page",
    "country": "Country",
    "browser": "Browser",
    "os": "OS",
    "device": "Device",
    "language": "Language",
    "region": "Region",
    "city": "City",
    "entry_page": "Entry page",
    "source": "Source",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
}
#: the public query whose one row is the headline strip rather than a card
HEADLINE_QUERY = "summary"
#: the dashboard's main chart: drawn with the previous period and a choice of buckets
MAIN_CHART = ("public", "visits")


def sees_private(site: SiteInfo | None = None) -> bool:
    """May the visitor see private reports (of ``site``)? A login, or a share link for it."""
    if current_user.is_authenticated:
        return True
    return site is not None and sharing.shares(site)


def dashboard_reports(site: SiteInfo | None = None) -> list[tuple[reporting.Query, str]]:
    """(query, chart) for each report the current user may see, in (order, name) order."""
    scopes = SCOPES if sees_private(site) else ("public",)
    queries = [q for scope in scopes for q in reporting.list_queries(scope)]
    queries = [q for q in queries if (q.scope, q.name) != ("public", HEADLINE_QUERY)]
    queries.sort(key=lambda q: (q.order, q.name))  # stable: public before private on a tie
    # the chart each card will show (declared, or inferred once per file version)
    return [(q, reporting.listed_chart(q)) for q in queries]


#: the range parameters a dashboard page drops when they are bad
RANGE_PARAMETERS = ("days", "from", "to", "t0", "t1")


def range_problem(args, today: dt.date) -> str | None:
    """Why the page's range parameters cannot be used, said once at the top, or None.

    The page then shows the default range instead of asking every card's API
    call for a range that each would refuse with the same error.
    """
    try:
        reporting.parse_range(args, now=today)
    except reporting.RangeError as error:
        return str(error)
    return None


def without_range(args) -> dict[str, str]:
    """The page's query parameters without its range ones."""
    return {k: v for k, v in args.items() if k not in RANGE_PARAMETERS}


def page_range(args, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """The range dashboard.js will ask the API for, computed the same way, or None if unclear.

    Only used to let the browser start the API calls early (<link rel=preload>);
    the API itself validates every range. ``today`` is the site's local date.
    """
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


def chart_interval(args, rng: tuple[dt.date, dt.date]) -> str:
    """The main chart's buckets as dashboard.js chooses them (intervalsFor/chosenInterval):
    the URL's ``interval`` when the range offers it, else hours up to two days, else days."""
    days = (rng[1] - rng[0]).days + 1
    if days <= 2:
        offered = ["hour", "day"]
    elif days <= 7:
        offered = ["day", "hour"]
    elif days < 60:
        offered = ["day", "week"]
    else:
        offered = ["day", "week", "month"]
    wanted = args.get("interval")
    return wanted if wanted in offered else offered[0]


#: what JavaScript's encodeURIComponent leaves as it is, besides letters, digits and -_.~
URI_COMPONENT_SAFE = "!*'()"


def page_filters(args) -> Filters | None:
    """The page's filters (kept in its URL), or None when they are bad (the API says why)."""
    try:
        return parse_filters(args)
    except FilterError:
        return None


def preload_urls(
    urls: list[str], rng: tuple[dt.date, dt.date] | None, filters: Filters | None = None
) -> list[str]:
    """The API URLs exactly as dashboard.js requests them for the page's range and filters.

    Filters follow the range in ``NAMES`` order, encoded as encodeURIComponent does.
    """
    if rng is None or filters is None:
        return []
    extra = "".join(
        f"&{name}={quote(value, safe=URI_COMPONENT_SAFE)}" for name, value in filters.items()
    )
    return [
        f"{url}{'&' if '?' in url else '?'}from={rng[0].isoformat()}&to={rng[1].isoformat()}{extra}"
        for url in urls
    ]


def with_site(url: str, site: SiteInfo, extra: dict[str, str] | None = None) -> str:
    """An API URL for one site (and a query's own parameters), with the page's share link."""
    return f"{url}?{site_query(site, extra)}"


def site_query(site: SiteInfo, extra: dict[str, str] | None = None) -> str:
    """``site=HOST`` (and ``extra``) for links and API calls, keeping a valid share token."""
    shared = {sharing.PARAMETER: sharing.request_token()} if sharing.shares(site) else {}
    return urlencode({"site": site.host, **(extra or {}), **shared})


def parameter_values(
    query: reporting.Query, site: SiteInfo, args
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The values a card or report page asks with for the query's own parameters, and the
    choices it offers: the request's value when it is one of them, else the first."""
    from crumby.reporting import parameters

    try:
        offered = parameters.choices(query, site)
    except parameters.ParameterError as exc:
        current_app.logger.warning("report %s: %s", query.key, exc)
        return {}, {}
    chosen = {}
    for name, values in offered.items():
        wanted = args.get(name)
        if wanted in values:
            chosen[name] = wanted
        elif values:
            chosen[name] = values[0]
    return chosen, offered


def _site_or_page():
    """The site of ``?site=``, or the page to show instead (a list, onboarding, login, 404)."""
    host = request.args.get("site")
    shared = sharing.shared_site()
    if shared is not None and host in (None, shared.host):
        return shared, None  # a share link opens its site, and only that one
    with db.engine.connect() as connection:
        if host is not None:
            site = find_site(connection, host)
            if site is None:
                abort(404, description=f"There is no site {host[:253]!r}.")
        else:
            sites = all_sites(connection)
            if not sites:
                return None, render_template("dashboard/welcome.html", snippet=snippet(None))
            if len(sites) > 1:
                return None, render_template(
                    "dashboard/sites.html", sites=site_list(connection, sites)
                )
            site = sites[0]
    if not site.public and not current_user.is_authenticated:
        return None, login_manager.unauthorized()
    return site, None


def snippet(site: SiteInfo | None) -> str:
    """The exact <script> line a site owner pastes into their pages."""
    domain = current_app.config.get("DOMAIN") or request.host
    scheme = "http" if domain.split(":")[0] in ("localhost", "127.0.0.1") else "https"
    data_site = f' data-site="{site.host}"' if site else ""
    return f'<script src="{scheme}://{domain}/cmb.js"{data_site} defer></script>'


def site_list(connection, sites: list[SiteInfo]) -> list[dict]:
    """Each site the user may see with its visitors over its last 30 local days and a sparkline.

    The figures come from the built-in ``summary`` and ``visits`` reports, so
    they mean exactly what the site's dashboard shows.
    """
    summary = reporting.get_query("public", HEADLINE_QUERY)
    daily = reporting.get_query("public", "visits")
    now = clock.now()
    rows = []
    for site in sites:
        if not site.public and not current_user.is_authenticated:
            continue
        t1 = reporting.today(site.timezone, now)
        t0 = t1 - dt.timedelta(days=29)
        row = {"site": site, "visitors": None, "spark": None}
        try:
            if summary is not None:
                result = reporting.run_query(summary, site, t0, t1)
                if result.data and "visitors" in result.columns:
                    row["visitors"] = result.data[0][result.columns.index("visitors")]
            if daily is not None:
                result = reporting.run_query(daily, site, t0, t1)
                if "users" in result.columns:
                    column = result.columns.index("users")
                    row["spark"] = sparkline([r[column] or 0 for r in result.data])
        except reporting.QueryError as exc:
            current_app.logger.warning("site list: %s", exc)
        rows.append(row)
    return rows


def sparkline(values: list[float], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for a small trend line (no script, no style: the CSP holds)."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values)
    )


def _has_data(site: SiteInfo) -> bool:
    from sqlalchemy import select

    from crumby.models import Visit

    with db.engine.connect() as connection:
        return (
            connection.execute(select(Visit.id).where(Visit.site_id == site.id).limit(1)).first()
            is not None
        )


@bp.get("/")
def index():
    """A site's dashboard: headline strip, range picker, every report the user may see.

    Without ``?site=`` it is the only site's, or a list of sites, or (no site
    yet) how to start. The list of reports is rendered here rather than
    fetched by the page, which saves the browser a round trip.
    """
    site, page = _site_or_page()
    if site is None:
        return page
    has_headline = reporting.get_query("public", HEADLINE_QUERY) is not None
    reports = dashboard_reports(site)
    root = api_root()
    # a query with its own parameters (the funnel) asks with the site's first choice; a card
    # whose parameter has no choice yet (no funnel) stays idle and says how to add one
    chosen, offered, idle = {}, {}, set()
    for q, _chart in reports:
        chosen[q.key], offered[q.key] = parameter_values(q, site, request.args)
        if len(chosen[q.key]) < len(offered[q.key]):
            idle.add(q.key)
    # the main chart and the headline ask with compare=previous: one request, both periods
    compare = {"compare": "previous"}
    card_urls = {
        q.key: with_site(
            f"{root}/{q.scope}/{q.name}",
            site,
            {**chosen[q.key], **(compare if (q.scope, q.name) == MAIN_CHART else {})},
        )
        for q, _c in reports
    }
    urls = [card_urls[q.key] for q, _chart in reports if q.key not in idle]
    today = reporting.today(site.timezone, clock.now())
    args = request.args
    bad_range = range_problem(args, today)
    if bad_range:
        args = without_range(args)
    rng = page_range(args, today)
    filters = page_filters(args)
    preload = preload_urls(urls, rng, filters)
    main = next((q.key for q, _c in reports if (q.scope, q.name) == MAIN_CHART), None)
    if preload and rng is not None and main and main not in idle:
        interval = chart_interval(request.args, rng)
        if interval != "day":  # dashboard.js adds it after the range and the filters
            at = urls.index(card_urls[main])
            preload[at] += f"&interval={interval}"
    summary = with_site(f"{root}/public/{HEADLINE_QUERY}", site, compare)
    if has_headline and rng is not None:
        preload += preload_urls([summary], rng, filters)
    with db.engine.connect() as connection:
        sites = [s for s in all_sites(connection) if s.public or current_user.is_authenticated]
    if sharing.shares(site) and not current_user.is_authenticated:
        sites = [site]  # a shared dashboard offers no way to other sites
    return render_template(
        "dashboard/index.html",
        api_root=root,
        reports=reports,
        has_headline=has_headline,
        preload=preload,
        current_site=site,
        sites=sites,
        today=today,
        now=clock.now(),
        main_chart=MAIN_CHART,
        summary_url=summary,
        site_query=site_query(site),
        card_urls=card_urls,
        chosen=chosen,
        offered=offered,
        idle=idle,
        waiting=not _has_data(site),
        snippet=snippet(site),
        filter_labels=FILTER_LABELS,
        range_error=bad_range,
    )


@bp.get("/reports/<scope>/<name>")
def report(scope: str, name: str):
    """One report on its own page: chart, whole table, CSV, and the SQL for a logged-in user."""

    if scope not in SCOPES:
        abort(404)
    if scope == "private" and not current_user.is_authenticated and not sharing.shared_site():
        return login_manager.unauthorized()
    query = reporting.get_query(scope, name)
    if query is None:
        abort(404, description=f"There is no {scope} report named {name!r}.")
    site, page = _site_or_page()
    if site is None:
        return page
    if scope == "private" and not sees_private(site):
        return login_manager.unauthorized()
    today = reporting.today(site.timezone, clock.now())
    args = request.args
    bad_range = range_problem(args, today)
    if bad_range:
        args = without_range(args)
    chosen, offered = parameter_values(query, site, args)
    sql = t0 = t1 = None
    if current_user.is_authenticated:
        sql, t0, t1 = _rendered_sql(query, site, today, chosen, args)
    api_url = with_site(f"{api_root()}/{scope}/{name}", site, chosen)
    return render_template(
        "dashboard/report.html",
        query=query,
        api_url=api_url,
        preload=preload_urls([api_url], page_range(args, today), page_filters(args)),
        range_error=bad_range,
        filter_labels=FILTER_LABELS,
        sql=sql,
        t0=t0,
        t1=t1,
        current_site=site,
        today=today,
        now=clock.now(),
        main_chart=MAIN_CHART,
        site_query=site_query(site),
        chosen={query.key: chosen},
        offered={query.key: offered},
        idle=set() if len(chosen) == len(offered) else {query.key},
    )


def _rendered_sql(
    query, site: SiteInfo, today: dt.date, chosen: dict[str, str], args
) -> tuple[str | None, object, object]:
    """The SQL a query runs for the page's range (``args`` hold a valid one, or none)."""
    from crumby.reporting import parameters
    from crumby.reporting.reports import render_query

    t0, t1 = reporting.parse_range(args, now=today)
    try:
        params = parameters.resolve(query, site, chosen or {}, days=(t1 - t0).days + 1)
    except parameters.ParameterError:  # no funnel yet: the page says so, there is no SQL
        return None, t0, t1
    try:
        filters = page_filters(args)
        return render_query(query, site, t0, t1, params=params, filters=filters).sql, t0, t1
    except reporting.QueryError as exc:  # a broken file still gets its page; the API says why
        current_app.logger.warning("report %s/%s does not render: %s", query.scope, query.name, exc)
        return None, t0, t1


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on pages without a <link rel=icon> (JSON, CSV): the SVG."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)
