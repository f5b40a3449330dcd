"""Reading a hit's parameters from whichever of the four encodings the caller used.

A hit arrives as a query string (the ``<img>`` fallback), a form body, a
``text/plain`` body holding form-encoding or JSON (what ``navigator.sendBeacon``
sends for a string), or a JSON body. Body fields win over query-string fields
of the same name. Sizes are checked before anything is parsed, so a huge body
costs no more than reading ``limit + 1`` bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from werkzeug.wsgi import get_input_stream

#: more fields than this in one hit is not a browser talking
MAX_FIELDS = 200


class HitError(Exception):
    """A hit Crumby refuses: ``status`` is 400 or 413, the message is one line for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def read_params(environ: Mapping[str, Any], limit: int) -> dict[str, str]:
    """All parameters of a hit as strings; HitError for oversized or unparsable input."""
    query = environ.get("QUERY_STRING", "")
    if len(query) > limit:
        raise HitError(413, f"query string larger than {limit} bytes")
    params = _parse_form(query.encode("latin-1", "replace")) if query else {}
    if environ.get("REQUEST_METHOD") == "POST":
        body = _read_body(environ, limit)
        if body:
            mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
            params.update(_parse_body(body, mimetype))
    return params


def _read_body(environ: Mapping[str, Any], limit: int) -> bytes:
    raw_length = environ.get("CONTENT_LENGTH")
    if raw_length and raw_length.isdigit():
        # A declared length: read exactly that, no more (the common, cheap case).
        length = int(raw_length)
        if length > limit:
            raise HitError(413, f"body larger than {limit} bytes")
        return environ["wsgi.input"].read(length) if length else b""
    # Chunked or undeclared: werkzeug knows whether and where such a body ends.
    body = get_input_stream(environ, safe_fallback=True).read(limit + 1)  # type: ignore[arg-type]
    if len(body) > limit:
        raise HitError(413, f"body larger than {limit} bytes")
    return body


def _parse_body(body: bytes, mimetype: str) -> dict[str, str]:
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return _parse_json(body)
    if mimetype == "multipart/form-data":
        raise HitError(400, "multipart bodies are not accepted; send form-encoding or JSON")
    if mimetype in ("", "text/plain") and body.lstrip()[:1] == b"{":
        return _parse_json(body)
    # application/x-www-form-urlencoded, text/plain holding form-encoding, or unlabeled
    return _parse_form(body)


def _parse_form(raw: bytes) -> dict[str, str]:
    """Form-encoding, as ``urllib.parse.parse_qsl`` reads it, in a third of its time.

    This is the hot path of every beacon, and most fields need no unquoting.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HitError(400, "body is not valid UTF-8") from None
    pairs = text.split("&")
    if len(pairs) > MAX_FIELDS:
        raise HitError(400, "too many fields")
    params = {}
    for pair in pairs:
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        params[key] = value
    return params


def _parse_json(raw: bytes) -> dict[str, str]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise HitError(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HitError(400, "JSON body must be an object")
    params = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            params[key] = str(value)
        else:
            raise HitError(400, f"field {key[:40]!r} must be a string or a number")
    return params
