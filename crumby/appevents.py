"""App events: ``POST /api/events``, a batch of events from a back end (contract section 12).

An app or a back end sends a JSON array of up to ``MAX_EVENTS`` objects
``{"name", "value", "cid", "page", "datetime"}`` with a Bearer token. The
batch is checked whole before anything is stored: the first bad item answers
400 naming its index (counted from 0) and what is wrong with it, and nothing
is stored. A good batch goes through the ingest pipeline in one transaction
(``Pipeline.store_all``) and answers ``{"stored": N}``.

``value`` may be any JSON value; ``events.value`` holds its JSON text
(``"pro"`` with its quotes, ``42``, ``{"plan":"pro"}``, ``null``), so that
``json.loads`` gives back what was sent. An absent value is stored as NULL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from crumby import clock, csrf, ingest
from crumby.auth import bearer_grant
from crumby.database import describe
from crumby.errors import json_error
from crumby.models import Event, column_length
from crumby.operations.ratelimit import limiter_for
from crumby.reporting.sitechoice import SiteChoiceError, choose_site

bp = Blueprint("appevents", __name__)

#: events per request
MAX_EVENTS = 1000
#: the largest body: 1,000 events at their longest, with room for JSON escapes
MAX_BYTES = 8 * 1024 * 1024
#: how old an event's datetime may be
MAX_AGE = dt.timedelta(days=7)
#: how far ahead of the server's clock a datetime may be (the sender's clock may run fast)
FUTURE_SKEW = dt.timedelta(minutes=1)
FIELDS = ("name", "value", "cid", "page", "datetime")
NAME_LENGTH = column_length(Event, "name") or 255
VALUE_LENGTH = column_length(Event, "value") or 1024
CID_LENGTH = column_length(Event, "cid") or 64
PAGE_LENGTH = column_length(Event, "doc_uri") or 2048


class ItemError(ValueError):
    """One event of a batch cannot be stored; ``index`` counts from 0."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"item {index}: {message}")
        self.index = index


def init_app(app: Flask) -> None:
    """Register ``/api/events``."""
    app.register_blueprint(bp)


def _unauthorized() -> Response:
    response = json_error(
        401, "authentication required: send 'Authorization: Bearer <token>' (crumby token NAME)"
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="crumby"'
    return response


@bp.get("/api/events")
def events_get() -> Response:
    """Only POST sends events."""
    response = json_error(405, "send events with POST: a JSON array of event objects")
    response.headers["Allow"] = "POST, OPTIONS"
    return response


#: the only query parameter of ``POST /api/events``; the events come in the body
QUERY_PARAMETERS = ("site",)


@bp.post("/api/events")
@csrf.exempt
def events_post() -> Response:
    """Store a batch of events, all of them or none."""
    limiter = limiter_for(current_app)
    wait = limiter.check(request.environ) if limiter is not None else 0
    if wait:  # HIT_RATE_LIMIT per client address, one request (up to 1,000 events) counts once
        response = json_error(429, "too many requests from this address")
        response.headers["Retry-After"] = str(wait)
        return response
    grant = bearer_grant()
    if grant is None:
        return _unauthorized()
    unknown = sorted(name for name in request.args if name not in QUERY_PARAMETERS)
    if unknown:  # the events are in the body: anything else in the URL is a client's mistake
        return json_error(400, f"unknown parameter: {unknown[0][:100]!r} (only site=HOST)")
    try:
        site = choose_site(request.args, grant.site_id)
    except SiteChoiceError as exc:
        return json_error(exc.status, str(exc))
    if not grant.may_send(site.id):
        return json_error(403, f"this API token is limited to the site {grant.site_host}")
    if (request.content_length or 0) > MAX_BYTES:
        return json_error(413, f"body larger than {MAX_BYTES} bytes")
    body = request.stream.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        return json_error(413, f"body larger than {MAX_BYTES} bytes")
    try:
        rows = parse_events(body, site.id, clock.now())
    except ItemError as exc:
        return json_error(400, str(exc), index=exc.index)
    except ValueError as exc:
        return json_error(400, str(exc))
    try:
        _visits, stored = ingest.store_all(current_app, events=rows)
    except SQLAlchemyError as exc:
        current_app.logger.error("could not store %d app events: %s", len(rows), describe(exc))
        return json_error(503, "database unavailable: no event was stored")
    return jsonify({"stored": stored})


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_events(body: bytes, site_id: int, now: dt.datetime) -> list[dict[str, Any]]:
    """The rows of a batch; ValueError for a body that is no batch, ItemError for a bad item."""
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise ValueError("body is not valid JSON: send a JSON array of event objects") from None
    if not isinstance(data, list):
        raise ValueError("body must be a JSON array of event objects")
    if len(data) > MAX_EVENTS:
        raise ItemError(
            MAX_EVENTS, f"at most {MAX_EVENTS} events per request (this one has {len(data)})"
        )
    return [event_row(index, item, site_id, now) for index, item in enumerate(data)]


def event_row(index: int, item: object, site_id: int, now: dt.datetime) -> dict[str, Any]:
    """The events row of one item of a batch, or ItemError saying what is wrong with it."""
    if not isinstance(item, Mapping):
        raise ItemError(index, "must be an object with at least a name")
    unknown = sorted(str(key) for key in item if key not in FIELDS)
    if unknown:
        raise ItemError(index, f"unknown field {unknown[0][:40]!r} (fields: {', '.join(FIELDS)})")
    name = _text(index, item, "name", NAME_LENGTH)
    if name is None:
        raise ItemError(index, "name is missing: every event needs a non-empty name")
    page = _text(index, item, "page", PAGE_LENGTH)
    if page is not None and not page.startswith("/"):
        raise ItemError(index, "page must be a path starting with /, such as /checkout")
    return {
        "site_id": site_id,
        "datetime": _datetime(index, item.get("datetime"), now),
        "name": name,
        "value": _value(index, item),
        "cid": _text(index, item, "cid", CID_LENGTH),
        "doc_uri": page,
        "doc_title": None,
        "ip": None,
        "is_bot": False,
    }


def _text(index: int, item: Mapping[str, Any], key: str, size: int) -> str | None:
    """A string field: None when absent, null or blank; ItemError if not a string or too long."""
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ItemError(index, f"{key} must be a string")
    value = value.replace("\x00", "").strip()
    if len(value) > size:
        raise ItemError(index, f"{key} is longer than {size} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ItemError(index, f"{key} is not valid Unicode (a lone surrogate)") from None
    return value or None


def _value(index: int, item: Mapping[str, Any]) -> str | None:
    """The value as JSON text; None when the item has no value (an explicit null is 'null')."""
    if "value" not in item:
        return None
    value = item["value"]
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it as its \\u escape
        text = json.dumps(value, separators=(",", ":"))
    except RecursionError:
        raise ItemError(index, "value is nested too deeply") from None
    if len(text) > VALUE_LENGTH:
        raise ItemError(
            index, f"value is longer than {VALUE_LENGTH} characters as JSON ({len(text)})"
        )
    return text


def _datetime(index: int, raw: object, now: dt.datetime) -> dt.datetime:
    """UTC (naive, as stored); now when absent; ItemError if unparsable, future or too old."""
    if raw is None:
        return now
    if not isinstance(raw, str):
        raise ItemError(index, "datetime must be an ISO 8601 string such as 2026-11-23T08:15:00Z")
    try:
        when = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ItemError(index, "datetime is not ISO 8601 (such as 2026-11-23T08:15:00Z)") from None
    if when.tzinfo is not None:
        try:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            raise ItemError(index, f"datetime {raw[:40]} is out of range") from None
    if when > now + FUTURE_SKEW:
        raise ItemError(index, f"datetime {raw[:40]} is in the future")
    if when < now - MAX_AGE:
        raise ItemError(index, f"datetime {raw[:40]} is more than {MAX_AGE.days} days old")
    return when
