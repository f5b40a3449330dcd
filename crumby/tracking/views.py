"""The tracking endpoints: GET /cmb.js, and /visit and /event for GET and POST.

Views stay thin: read the parameters (``params``), validate them into columns
(``hits``), add what the server knows (``enrich``, ``geo``), hand the row to
the group-commit writer (``writer``) and answer once it is committed.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, current_app, request, send_from_directory

from crumby import geo
from crumby.errors import json_error
from crumby.extensions import db
from crumby.models import Event, Visit, utcnow
from crumby.tracking import bp
from crumby.tracking.enrich import anonymize_ip, anonymous_id, client_ip, user_agent
from crumby.tracking.hits import clean, event_columns, limit, visit_columns
from crumby.tracking.params import HitError, read_params
from crumby.tracking.writer import StoreError, writer_for

#: the smallest transparent GIF, for <img> fallbacks
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
STATIC_FOLDER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")
VISIT_COLUMNS = [c.name for c in Visit.__table__.columns if c.name != "id"]
EVENT_COLUMNS = [c.name for c in Event.__table__.columns if c.name != "id"]


@bp.get("/cmb.js")
def tracker() -> Response:
    """The tracker script, cacheable by browsers for TRACKER_MAX_AGE seconds."""
    response = send_from_directory(
        STATIC_FOLDER,
        "cmb.js",
        mimetype="text/javascript",
        max_age=int(current_app.config.get("TRACKER_MAX_AGE", 3600)),
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/visit", methods=["GET", "POST"])
def visit() -> Response:
    """Record a page view."""
    return _record(Visit, VISIT_COLUMNS, visit_columns, is_visit=True)


@bp.route("/event", methods=["GET", "POST"])
def event() -> Response:
    """Record a ``cmb.event(name, value)`` call."""
    return _record(Event, EVENT_COLUMNS, event_columns, is_visit=False)


@bp.after_request
def _cross_origin(response: Response) -> Response:
    """Any site may send hits and load the tracker; nothing here is private."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
    return response


def _record(
    model: type,
    all_columns: list[str],
    columns_of: Callable[[Mapping[str, str]], dict[str, Any]],
    is_visit: bool,
) -> Response:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        params = read_params(request, int(app.config.get("HIT_MAX_BYTES", 8192)))
        columns = columns_of(params)
    except HitError as exc:
        return json_error(exc.status, exc.message)
    row = dict.fromkeys(all_columns)
    row.update(columns)
    # HEAD (link checkers, prefetchers) is answered like GET but records nothing.
    if request.method != "HEAD":
        _enrich(app, row, is_visit)
        try:
            writer_for(app, db.engine).store(model.__table__, row)
        except StoreError as exc:
            return json_error(503, str(exc))
    if request.method in ("GET", "HEAD"):
        response = Response(PIXEL, mimetype="image/gif")
        response.headers["Cache-Control"] = "no-store"
        return response
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, no type
    return response


def _enrich(app: Flask, row: dict[str, Any], is_visit: bool) -> None:
    """Add what the server knows about the hit: time, address, agent, place, visitor id."""
    environ = request.environ  # plain dict lookups: this runs for every hit
    now = utcnow()
    row["datetime"] = now
    ip = client_ip(
        environ.get("REMOTE_ADDR"),
        environ.get("HTTP_X_FORWARDED_FOR"),
        int(app.config["PROXY_COUNT"]),
    )
    ua = _header(environ, "HTTP_USER_AGENT")
    agent = user_agent(ua)
    row["is_bot"] = agent.is_bot
    if row["cid"] is None:
        row["cid"] = anonymous_id(_secret(app), now.date(), ip, ua)
    if is_visit:
        row["platform"] = clean(agent.platform, limit(Visit, "platform"))
        row["browser"] = clean(agent.browser, limit(Visit, "browser"))
        row["version"] = clean(agent.version, limit(Visit, "version"))
        row["device"] = agent.device
        row["_referrer"] = clean(_header(environ, "HTTP_REFERER"), limit(Visit, "referrer_header"))
        row["_lang"] = clean(_header(environ, "HTTP_ACCEPT_LANGUAGE"), limit(Visit, "lang_header"))
        for key, value in geo.lookup(ip, app).items():
            row[key] = clean(value, limit(Visit, key)) if isinstance(value, str) else value
    if ip is not None and app.config.get("ANONYMIZE_IP"):
        ip = anonymize_ip(ip)
    row["ip"] = ip[:45] if ip else None


def _header(environ: Mapping[str, Any], key: str) -> str | None:
    """A header as text: WSGI hands them over as latin-1, browsers send UTF-8."""
    value = environ.get(key)
    if value is None or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _secret(app: Flask) -> bytes:
    """The key of anonymous ids: SECRET_KEY, or a random key for this process."""
    key = app.config.get("SECRET_KEY")
    if key:
        return key.encode("utf-8") if isinstance(key, str) else bytes(key)
    state = app.extensions.setdefault("crumby.tracking", {})
    if "anonymous_key" not in state:
        state["anonymous_key"] = secrets.token_bytes(32)
    return state["anonymous_key"]
