"""The JSON/CSV API: listings and results (contract section 6). Views stay thin."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request, url_for
from flask_login import current_user

from crumby import clock, sharing
from crumby.auth import bearer_grant
from crumby.errors import json_error
from crumby.reporting import bp, parameters
from crumby.reporting.compare import CompareError, comparison, parse_compare, previous_range
from crumby.reporting.csvout import to_csv
from crumby.reporting.discovery import SCOPES, Query, get_query, list_queries
from crumby.reporting.filters import FilterError, parse_filters
from crumby.reporting.ranges import RangeError, parse_range, today
from crumby.reporting.reports import QueryError, listed_chart, run_query
from crumby.reporting.sitechoice import SiteChoiceError, choose_site, may_see, token_refusal

FORMATS = ("json", "csv")


def _unauthorized() -> Response:
    response = json_error(
        401, "authentication required: log in or send 'Authorization: Bearer <token>'"
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="crumby"'
    return response


def _denied(scope: str) -> Response | None:
    """403 JSON for a token that may not read reports; 401 JSON for a private request
    without a session, a valid bearer token or a valid share link (checked per site later)."""
    refusal = token_refusal()
    if refusal:
        return json_error(403, refusal)
    if scope == "private" and not (
        current_user.is_authenticated or bearer_grant() or sharing.shared_site()
    ):
        return _unauthorized()
    return None


def _cache_headers(response: Response, scope: str, max_age: int | None = None) -> Response:
    if scope == "public":
        if max_age is None:
            max_age = int(current_app.config.get("REPORT_CACHE_SECONDS") or 0)
        response.headers["Cache-Control"] = f"public, max-age={max_age}"
    else:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def describe_query(query: Query) -> dict[str, Any]:
    """A listing entry (INTERFACES.md)."""
    return {
        "name": query.name,
        "url": url_for("reporting.result", scope=query.scope, name=query.name),
        "title": query.title,
        "description": query.description,
        "chart": listed_chart(query),
        "order": query.order,
        # a custom query that never uses the filters helper: the dashboard marks its card
        "ignores_filters": not query.uses_filters,
        # what a row stands for: clicking it applies these filters with the row's values
        "row_filter": query.row_filter,
    }


@bp.get("/api/<scope>")
def listing(scope: str) -> Response:
    """Every query of a scope."""
    if scope not in SCOPES:
        return json_error(404, f"no such API: /api/{scope}")
    denied = _denied(scope)
    if denied:
        return denied
    response = jsonify({"queries": [describe_query(q) for q in list_queries(scope)]})
    return _cache_headers(response, scope)


@bp.get("/api/<scope>/<name>")
def result(scope: str, name: str) -> Response:
    """One query's result for a site and the requested range, as JSON or CSV."""
    if scope not in SCOPES:
        return json_error(404, f"no such API: /api/{scope}")
    denied = _denied(scope)
    if denied:
        return denied
    grant = bearer_grant()
    try:
        site = choose_site(request.args, grant.site_id if grant else None)
    except SiteChoiceError as exc:
        return json_error(exc.status, str(exc))
    refusal = token_refusal(site)
    if refusal:
        return json_error(403, refusal)
    if not may_see(site, scope):
        return _unauthorized()
    # a private site's public reports are private answers: no shared cache may keep them
    scope_of_answer = "public" if site.public and scope == "public" else "private"
    query = get_query(scope, name)
    if query is None:
        return json_error(404, f"no such {scope} query: {name[:100]}")
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        return json_error(400, "format must be json or csv")
    try:
        t0, t1 = parse_range(request.args, now=today(site.timezone, clock.now()))
    except RangeError as exc:
        return json_error(400, str(exc))
    try:
        filters = parse_filters(request.args)
    except FilterError as exc:
        return json_error(400, str(exc), parameter=exc.parameter)
    try:
        compare = parse_compare(request.args)
    except CompareError as exc:
        return json_error(400, str(exc), parameter="compare")
    try:
        params = parameters.resolve(query, site, request.args, days=(t1 - t0).days + 1)
    except parameters.ParameterError as exc:
        extra = {"parameter": exc.parameter} if exc.parameter else {}
        return json_error(exc.status, str(exc), **extra)
    try:
        answer = run_query(query, site, t0, t1, filters, params=params)
        prior = None
        if compare and fmt == "json":
            prior = run_query(query, site, *previous_range(t0, t1), filters, params=params)
    except QueryError as exc:
        trusted = current_user.is_authenticated or grant is not None
        return json_error(exc.status, str(exc) if trusted else exc.public_message, query=query.key)
    if fmt == "csv":
        body = to_csv(answer.columns, answer.data)
        response = Response(body, mimetype="text/csv")
        filename = f"{query.name}_{site.host}_{t0}_{t1}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return _cache_headers(response, scope_of_answer, answer.max_age)
    extra = {"parameters": {n: b.value for n, b in params.items()}} if params else {}
    if prior is not None:
        extra.update(comparison(answer, prior))
    response = jsonify(
        {
            **extra,
            "name": query.name,
            "title": query.title,
            "description": query.description,
            "chart": answer.chart,
            "columns": answer.columns,
            "data": answer.data,
            "site": site.host,
            "timezone": site.timezone,
            "t0": t0.isoformat(),
            "t1": t1.isoformat(),
            "filters": filters.as_dict(),
            "ignores_filters": not answer.filtered,
        }
    )
    return _cache_headers(response, scope_of_answer, answer.max_age)
