"""/visit and /event: the hit endpoints, as a small WSGI app in front of Flask.

(It answers the Measurement Protocol's ``/collect`` and ``/batch`` too, by
``crumby.tracking.collect``, with the same parsing, enrichment and writer.)

Hits are Crumby's hottest path, and the one whose work is smallest: parse a
few fields, add what the server knows, hand the row to the group-commit
writer. Flask's per-request machinery (request context, routing, before and
after hooks, response objects) cost more than that work, and under load it
also holds the GIL that the writer thread needs to commit. So the two paths
are answered here, before Flask sees the request; everything else, /cmb.js
included, passes through to the Flask app unchanged. ``bench/ingest.py``
measures the difference (see README).

Answers are those of a JSON API: 204 for POST, a 1x1 GIF for GET and HEAD
(HEAD records nothing), CORS for any origin, and ``{"error": ...}`` with 400,
405, 413, 429 (over HIT_RATE_LIMIT, with ``Retry-After``) or 503. A bug
answers 500 JSON and is logged with its traceback (or raised, in a testing
app, as Flask does).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask
from sqlalchemy import Table
from sqlalchemy.engine import Engine

from crumby import clock, geo
from crumby.database import DatabaseError, ensure_schema
from crumby.extensions import db
from crumby.ingest.writer import WAIT_SECONDS, StoreError, writer_for
from crumby.models import Event, Visit
from crumby.operations.ratelimit import limiter_for
from crumby.tracking.enrich import anonymize_ip, client_ip, user_agent
from crumby.tracking.hits import clean, event_columns, limit, visit_columns
from crumby.tracking.params import HitError, read_params

SITE_LENGTH = 253
#: the smallest transparent GIF, for <img> fallbacks
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
ALLOWED_METHODS = "GET, HEAD, POST, OPTIONS"
#: on every answer: any site may send hits; nothing here is private
COMMON_HEADERS = [("Access-Control-Allow-Origin", "*"), ("X-Content-Type-Options", "nosniff")]
PREFLIGHT_HEADERS = [
    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type"),
    ("Access-Control-Max-Age", "86400"),
]
STATUS_LINES = {
    200: "200 OK",
    204: "204 No Content",
    400: "400 Bad Request",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Kind:
    """What one hit endpoint stores: the table, its columns, and how to read a hit into them."""

    def __init__(
        self,
        model: type,
        columns_of: Callable[[Mapping[str, str]], dict[str, Any]],
        is_visit: bool,
    ) -> None:
        self.table: Table = model.__table__  # type: ignore[attr-defined]
        self.columns = [c.name for c in self.table.columns if c.name != "id"]
        self.columns_of = columns_of
        self.is_visit = is_visit


KINDS = {"/visit": Kind(Visit, visit_columns, True), "/event": Kind(Event, event_columns, False)}
#: Measurement Protocol v1 hits, answered by ``crumby.tracking.collect``
COLLECT_PATHS = frozenset({"/collect", "/batch", "/debug/collect"})


class HitEndpoints:
    """WSGI middleware: answers /visit and /event itself, passes the rest to ``wrapped``."""

    def __init__(self, app: Flask, wrapped: WSGIApp) -> None:
        self.app = app
        self.wrapped = wrapped
        self._engine: Engine | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        kind = KINDS.get(path)
        if kind is None and path not in COLLECT_PATHS:
            return self.wrapped(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if kind is None:
                from crumby.tracking.collect import answer_collect

                status, headers, body = answer_collect(self, path, method, environ)
            else:
                status, headers, body = self.answer(kind, method, environ)
        except Exception:
            if self.app.testing or self.app.config.get("PROPAGATE_EXCEPTIONS"):
                raise
            self.app.logger.exception("unhandled error on %s %s", method, environ["PATH_INFO"])
            status, headers, body = _json(500, "internal server error")
        headers += COMMON_HEADERS
        start_response(STATUS_LINES[status], headers)
        return [] if method == "HEAD" else [body]

    def answer(
        self, kind: Kind, method: str, environ: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for one hit."""
        if method == "OPTIONS":
            return 204, [*PREFLIGHT_HEADERS, ("Allow", ALLOWED_METHODS)], b""
        if method not in ("GET", "HEAD", "POST"):
            status, headers, body = _json(405, f"{method} is not allowed here")
            return status, [*headers, ("Allow", ALLOWED_METHODS)], body
        app = self.app
        # HIT_RATE_LIMIT, before any parsing: a flood is turned away at the least cost
        limiter = limiter_for(app) if method != "HEAD" else None
        if limiter is not None:
            wait = limiter.check(environ)
            if wait:
                status, headers, body = _json(429, "too many hits from this address")
                return status, [*headers, ("Retry-After", str(wait))], body
        try:
            params = read_params(environ, int(app.config.get("HIT_MAX_BYTES", 8192)))
            columns = kind.columns_of(params)
        except HitError as exc:
            return _json(exc.status, exc.message)
        # HEAD (link checkers, prefetchers) is answered like GET but records nothing.
        if method != "HEAD":
            row = dict.fromkeys(kind.columns)
            row.update(columns)
            enrich(app, environ, row, kind.is_visit)
            # where the pipeline looks for the hit's site (contract section 8)
            row["site_hint"] = clean(params.get("site"), SITE_LENGTH)
            if not kind.is_visit:
                row["page_hint"] = _header(environ, "HTTP_REFERER")
            # the pipeline drops the row under RESPECT_DNT; the answer stays the same
            row["dnt_hint"] = asks_not_to_be_tracked(environ)
            try:
                writer_for(app, self.engine()).store(kind.table, row)
            except DatabaseError as exc:
                app.logger.error("%s", exc)
                return unavailable("database unavailable")
            except StoreError as exc:
                return unavailable(str(exc))
        if method == "POST":
            return 204, [], b""
        return gif()

    def engine(self) -> Engine:
        """The app's engine, with its tables in place (checked once per process).

        A hit waits for that check no longer than for its row (HIT_WAIT_SECONDS).
        """
        ensure_schema(self.app, float(self.app.config.get("HIT_WAIT_SECONDS") or WAIT_SECONDS))
        if self._engine is None:
            with self.app.app_context():
                self._engine = db.engine
        return self._engine


def gif() -> tuple[int, list[tuple[str, str]], bytes]:
    """200 with the 1x1 GIF, never cached."""
    headers = [
        ("Content-Type", "image/gif"),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(PIXEL))),
    ]
    return 200, headers, PIXEL


#: seconds a client is asked to wait before sending a hit again after a 503
RETRY_AFTER = 5


def unavailable(message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """503 with ``Retry-After``: the hit was not stored, and may be sent again."""
    status, headers, body = _json(503, message)
    return status, [*headers, ("Retry-After", str(RETRY_AFTER))], body


def _json(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The ``{"error": ...}`` of ``crumby.errors.json_error``, without an app context."""
    body = json.dumps({"error": message}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return status, headers, body


def enrich(app: Flask, environ: Mapping[str, Any], row: dict[str, Any], is_visit: bool) -> None:
    """Add what the server knows about a hit: time, address, agent, place, visitor id."""
    now = clock.now(app)
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
        # the pipeline makes the day's anonymous id once the hit's site is known
        row["visitor_hint"] = (ip, ua)
    if is_visit:
        row["platform"] = clean(agent.platform, limit(Visit, "platform"))
        row["browser"] = clean(agent.browser, limit(Visit, "browser"))
        row["version"] = clean(agent.version, limit(Visit, "version"))
        row["os_version"] = clean(agent.os_version, limit(Visit, "os_version"))
        row["device"] = agent.device
        row["_referrer"] = clean(_header(environ, "HTTP_REFERER"), limit(Visit, "referrer_header"))
        row["_lang"] = clean(_header(environ, "HTTP_ACCEPT_LANGUAGE"), limit(Visit, "lang_header"))
        for key, value in geo.lookup(ip, app).items():
            row[key] = clean(value, limit(Visit, key)) if isinstance(value, str) else value
    if ip is not None and app.config.get("ANONYMIZE_IP"):
        ip = anonymize_ip(ip)
    row["ip"] = ip[:45] if ip else None


def asks_not_to_be_tracked(environ: Mapping[str, Any]) -> bool:
    """True for a hit with ``DNT: 1`` or ``Sec-GPC: 1`` (Do Not Track, Global Privacy Control)."""
    dnt = environ.get("HTTP_DNT")
    gpc = environ.get("HTTP_SEC_GPC")
    return (dnt is not None and dnt.strip() == "1") or (gpc is not None and gpc.strip() == "1")


def _header(environ: Mapping[str, Any], key: str) -> str | None:
    """A header as text: WSGI hands them over as latin-1, browsers send UTF-8."""
    value = environ.get(key)
    if value is None or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value
