"""/collect, /batch and /debug/collect: Google Analytics Measurement Protocol v1 hits.

Tools built for Universal Analytics send ``v=1&t=pageview&tid=...&cid=...``.
Each hit is translated into the parameters of the equivalent ``/visit`` or
``/event`` hit and then goes the same way (``crumby.tracking.hits`` reads
the columns, ``endpoint.enrich`` adds what the server knows, the group-commit
writer stores it through the ingest pipeline), so it makes the same row.

- ``tid`` is the site: a registered host (``www.`` folded). It alone names
  the site (the pipeline's ``site_only`` hint): a hit of an unknown ``tid`` is
  not stored, whatever its page, and counted as ``unknown_site``.
- ``t=pageview`` is a visit, ``t=event`` an event named ``"<ec> / <ea>"``
  whose value is ``el`` (or ``ev`` without ``el``). Other hit types are
  answered and not stored (counted as ``unsupported``).
- ``uip`` and ``ua`` (the visitor's address and User-Agent) replace the
  sender's only when the request carries a valid bearer token that may send
  to the hit's site; otherwise they are ignored.

As the protocol's endpoint does, ``/collect`` and ``/batch`` answer 200 with
a 1x1 GIF for every hit, stored or not (a malformed hit is counted as
``malformed``); ``/debug/collect`` stores nothing and answers JSON saying
whether and why a hit would be refused, in the shape of Google's validation
server. Only what HTTP itself refuses gets another status: 405 for another
method, 413 for a body over the limits, 503 when the database is down.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy.exc import SQLAlchemyError

from crumby import accounts
from crumby.database import DatabaseError, describe
from crumby.ingest import counters_for, pipeline_for
from crumby.ingest.writer import StoreError, writer_for
from crumby.models import Visit
from crumby.operations.ratelimit import limiter_for
from crumby.sites import fold_host
from crumby.tracking.endpoint import (
    ALLOWED_METHODS,
    KINDS,
    PREFLIGHT_HEADERS,
    SITE_LENGTH,
    Kind,
    _header,
    _json,
    enrich,
    gif,
    unavailable,
)
from crumby.tracking.enrich import _valid_ip
from crumby.tracking.hits import clean, limit
from crumby.tracking.params import HitError, _parse_form, _read_body, read_params

if TYPE_CHECKING:
    from crumby.tracking.endpoint import HitEndpoints

#: hits per /batch request, as the protocol allows
MAX_BATCH = 20
#: the hit types Crumby stores
TYPES = {"pageview": "/visit", "event": "/event"}
#: campaign parameters -> visit columns (they win over the utm_* of the page URL)
CAMPAIGN = {
    "cs": "utm_source",
    "cm": "utm_medium",
    "cn": "utm_campaign",
    "ck": "utm_term",
    "cc": "utm_content",
}
#: the parameters that pass unchanged to the /visit parameters of the same name
VISIT_PASSED = ("dt", "dr", "ul", "sr", "sd", "de")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}")
_COUNT = re.compile(r"\d{1,18}")

Answer = tuple[int, list[tuple[str, str]], bytes]


class Refused(Exception):
    """A hit that is not stored: ``reason`` is ``malformed`` or ``unsupported``."""

    def __init__(self, reason: str, parameter: str | None, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.parameter = parameter
        self.message = message


class Hit:
    """One Measurement Protocol hit translated: the kind, its columns, the site and overrides."""

    def __init__(
        self, kind: Kind, columns: dict[str, Any], tid: str, params: Mapping[str, str]
    ) -> None:
        self.kind = kind
        self.columns = columns
        self.tid = tid
        self.uip = params.get("uip")
        self.ua = params.get("ua")


def translate(params: Mapping[str, str]) -> Hit:
    """The /visit or /event reading of a hit; Refused saying why it is not stored."""
    if params.get("v", "").strip() != "1":
        raise Refused("malformed", "v", "v must be 1 (Measurement Protocol version 1)")
    tid = (params.get("tid") or "").strip()
    if not tid:
        raise Refused("malformed", "tid", "tid is required: the host of a registered site")
    hit_type = (params.get("t") or "").strip()
    if not hit_type:
        raise Refused("malformed", "t", "t is required: pageview or event")
    if hit_type not in TYPES:
        raise Refused(
            "unsupported", "t", f"hit type {hit_type[:40]!r} is not stored (pageview, event)"
        )
    cid = params.get("cid") or params.get("uid")
    crumby: dict[str, str] = {}
    page = page_url(params, tid)
    if page:
        crumby["dl"] = page
    if cid:
        crumby["cid"] = cid
    if params.get("dt"):
        crumby["dt"] = params["dt"]
    if hit_type == "pageview":
        if not page:
            raise Refused("malformed", "dl", "a pageview needs dl, or dp (with dh or tid)")
        for key in VISIT_PASSED:
            if params.get(key):
                crumby[key] = params[key]
    else:
        category, action = params.get("ec"), params.get("ea")
        if not category or not category.strip():
            raise Refused("malformed", "ec", "an event needs ec (its category)")
        if not action or not action.strip():
            raise Refused("malformed", "ea", "an event needs ea (its action)")
        crumby["en"] = f"{category.strip()} / {action.strip()}"
        value = params.get("ev")
        if value is not None and not _COUNT.fullmatch(value.strip()):
            raise Refused("malformed", "ev", "ev must be a non-negative integer")
        label = params.get("el")
        if label or value:
            crumby["ev"] = label or value.strip()  # type: ignore[union-attr]
    kind = KINDS[TYPES[hit_type]]
    try:
        columns = kind.columns_of(crumby)
    except HitError as exc:
        raise Refused("malformed", _parameter_of(exc.message), exc.message) from None
    if kind.is_visit:
        for key, column in CAMPAIGN.items():
            text = clean(params.get(key), limit(Visit, column))
            if text:
                columns[column] = text
    return Hit(kind, columns, tid, params)


def page_url(params: Mapping[str, str], tid: str) -> str | None:
    """The page: ``dl``, its path replaced by ``dp`` if given; else ``https://`` dh (or tid) dp."""
    dl = (params.get("dl") or "").strip()
    dp = (params.get("dp") or "").strip()
    if dp and not dp.startswith("/"):
        dp = "/" + dp
    if dl:
        if not dp:
            return dl
        try:
            parts = urlsplit(dl)
        except ValueError:
            raise Refused("malformed", "dl", "dl is not a URL") from None
        path, _, query = dp.partition("?")
        return urlunsplit((parts.scheme, parts.netloc, path, query, ""))
    if not dp:
        return None
    host = (params.get("dh") or "").strip() or tid
    if not _HOST.fullmatch(host):
        raise Refused("malformed", "dh", "dh must be a host name")
    return f"https://{host}{dp}"


def _parameter_of(message: str) -> str | None:
    first = message.split(" ", 1)[0]
    return first if first in ("dl", "sr", "sd") else None


def read_hits(path: str, environ: dict[str, Any], size: int) -> list[Mapping[str, str] | Refused]:
    """The hits of a request: one for /collect, a line each for /batch (HitError if too big)."""
    if path != "/batch":
        try:
            return [read_params(environ, size)]
        except HitError as exc:
            if exc.status == 413:
                raise
            return [Refused("malformed", None, exc.message)]
    body = _read_body(environ, 2 * size)
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > MAX_BATCH:
        raise HitError(413, f"a batch holds at most {MAX_BATCH} hits (this one {len(lines)})")
    hits: list[Mapping[str, str] | Refused] = []
    for line in lines:
        if len(line) > size:
            hits.append(Refused("malformed", None, f"hit larger than {size} bytes"))
            continue
        try:
            hits.append(_parse_form(line.strip()))
        except HitError as exc:
            hits.append(Refused("malformed", None, exc.message))
    return hits


def answer_collect(
    endpoints: HitEndpoints, path: str, method: str, environ: dict[str, Any]
) -> Answer:
    """Status, headers and body for /collect, /batch or /debug/collect."""
    if method == "OPTIONS":
        return 204, [*PREFLIGHT_HEADERS, ("Allow", ALLOWED_METHODS)], b""
    allowed = ("POST",) if path == "/batch" else ("GET", "HEAD", "POST")
    if method not in allowed:
        status, headers, body = _json(405, f"{method} is not allowed here")
        return status, [*headers, ("Allow", ", ".join((*allowed, "OPTIONS")))], body
    app = endpoints.app
    limiter = limiter_for(app) if method != "HEAD" else None
    wait = limiter.check(environ) if limiter is not None else 0
    if wait:  # HIT_RATE_LIMIT, as for /visit and /event: one request counts once
        status, headers, body = _json(429, "too many hits from this address")
        return status, [*headers, ("Retry-After", str(wait))], body
    try:
        hits = read_hits(path, environ, int(app.config.get("HIT_MAX_BYTES", 8192)))
    except HitError as exc:
        return _json(exc.status, exc.message)
    if method == "HEAD":
        return gif()  # answered, never recorded
    try:
        if path == "/debug/collect":
            return _debug(endpoints, hits)
        return _store(endpoints, environ, hits)
    except (DatabaseError, SQLAlchemyError) as exc:
        app.logger.error("%s", exc if isinstance(exc, DatabaseError) else describe(exc))
        return unavailable("database unavailable")
    except StoreError as exc:
        return unavailable(str(exc))


def _store(
    endpoints: HitEndpoints, environ: dict[str, Any], hits: list[Mapping[str, str] | Refused]
) -> Answer:
    """Store the hits Crumby keeps, count the others; the GIF either way."""
    app = endpoints.app
    rows = []
    refused: Counter[str] = Counter()
    grant = _Grant(app, environ)
    for params in hits:
        try:
            if isinstance(params, Refused):
                raise params
            hit = translate(params)
            rows.append(_row(endpoints, environ, hit, grant))
        except Refused as exc:
            refused[exc.reason] += 1
    if refused:
        counters_for(app).add(Counter(), refused)
    if rows:
        writer_for(app, endpoints.engine()).store_many(rows)
    return gif()


class _Grant:
    """The request's bearer token, looked up on first need (only hits with overrides ask)."""

    def __init__(self, app: Any, environ: Mapping[str, Any]) -> None:
        self.app = app
        self.environ = environ
        self.looked_up = False
        self.grant: accounts.Grant | None = None

    def may_send(self, tid: str) -> bool:
        if not self.looked_up:
            self.looked_up = True
            scheme, _, token = (_header(self.environ, "HTTP_AUTHORIZATION") or "").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                with self.app.app_context():
                    self.grant = accounts.grant_for_token(token.strip())
        if self.grant is None:
            return False
        return self.grant.site_host is None or self.grant.site_host == fold_host(tid)


def _row(
    endpoints: HitEndpoints, environ: dict[str, Any], hit: Hit, grant: _Grant
) -> tuple[Any, dict[str, Any]]:
    """The table and row of a translated hit, enriched like a /visit or /event hit."""
    seen = environ
    if (hit.uip or hit.ua) and grant.may_send(hit.tid):
        seen = dict(environ)
        if hit.uip:
            address = _valid_ip(hit.uip)
            if address is None:
                raise Refused("malformed", "uip", "uip is not an IP address")
            seen["REMOTE_ADDR"] = address
            seen.pop("HTTP_X_FORWARDED_FOR", None)
        if hit.ua:
            seen["HTTP_USER_AGENT"] = hit.ua
    row = dict.fromkeys(hit.kind.columns)
    row.update(hit.columns)
    enrich(endpoints.app, seen, row, hit.kind.is_visit)
    row["site_hint"] = clean(hit.tid, SITE_LENGTH)
    row["site_only"] = True
    return hit.kind.table, row


def _debug(endpoints: HitEndpoints, hits: list[Mapping[str, str] | Refused]) -> Answer:
    """What would become of each hit, in the shape of Google's validation server."""
    results = []
    for params in hits:
        messages = []
        try:
            if isinstance(params, Refused):
                raise params
            hit = translate(params)
            if not _registered(endpoints, hit.tid):
                messages.append(
                    _message(
                        "tid", f"tid {hit.tid[:80]!r} is no registered site: the hit is not stored"
                    )
                )
        except Refused as exc:
            messages.append(_message(exc.parameter, exc.message))
        results.append(
            {
                "valid": not messages,
                "parserMessage": messages,
                "hit": "" if isinstance(params, Refused) else _hit_text(params),
            }
        )
    document = {
        "hitParsingResult": results,
        "parserMessage": [
            {"messageType": "INFO", "description": f"Found {len(hits)} hit(s) in the request."}
        ],
    }
    body = json.dumps(document).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(body))),
    ]
    return 200, headers, body


def _message(parameter: str | None, description: str) -> dict[str, str]:
    message = {"messageType": "ERROR", "description": description}
    if parameter:
        message["parameter"] = parameter
    return message


def _hit_text(params: Mapping[str, str]) -> str:
    return "/debug/collect?" + urlencode(list(params.items()))


def _registered(endpoints: HitEndpoints, tid: str) -> bool:
    engine = endpoints.engine()
    with engine.connect() as connection:
        site = pipeline_for(endpoints.app, engine).directory.resolve(connection, [tid])
    return site is not None
