"""Turning a hit's parameters into the columns of a visit or an event row.

Validation is strict about what cannot be stored meaningfully (a visit
without a page URL, a screen size that is not ``WxH``) and lenient about
length: every text is cleaned of what databases refuse (NUL, lone surrogates)
and cut to its column's size, so no input can make the insert fail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crumby.models import Event, Visit, column_length
from crumby.tracking.params import HitError

#: parameter -> visit column, for the plain text fields the browser sends
VISIT_FIELDS = {
    "cid": "cid",
    "dl": "doc_uri",
    "dt": "doc_title",
    "de": "doc_enc",
    "dr": "referrer",
    "ul": "lang",
    "sd": "screen_depth",
    "sr": "screen_res",
}
EVENT_FIELDS = {"cid": "cid", "dl": "doc_uri", "dt": "doc_title", "en": "name", "ev": "value"}
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

SCREEN_RES = re.compile(r"\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*")
SCREEN_DEPTH = re.compile(r"\s*(\d{1,3})(?:\s*-?\s*bits?)?\s*", re.IGNORECASE)

_LENGTHS: dict[tuple[type, str], int | None] = {}


def limit(model: type, column: str) -> int | None:
    """The column's size, looked up once."""
    key = (model, column)
    if key not in _LENGTHS:
        _LENGTHS[key] = column_length(model, column)
    return _LENGTHS[key]


def clean(text: str | None, size: int | None) -> str | None:
    """Text every database accepts, cut to ``size`` characters; empty becomes None."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "")
    if size is not None and len(text) > size:
        text = text[:size]
    if not text.isascii():  # ASCII (most values) cannot hold a lone surrogate
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from JSON "\ud800" escapes
            text = text.encode("utf-8", "replace").decode("utf-8")
    text = text.strip()
    return text or None


def _page_url(value: str | None, required: bool) -> str | None:
    if value is None or not value.strip():
        if required:
            raise HitError(400, "missing required parameter dl (the page URL)")
        return None
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        raise HitError(400, "dl is not a URL") from None
    if not parts.scheme or not (parts.netloc or parts.scheme in ("file", "data", "about")):
        raise HitError(400, "dl must be a full URL such as https://example.com/page")
    return value


def utm_params(url: str | None) -> dict[str, str]:
    """The utm_* campaign parameters of a page URL (first occurrence of each)."""
    if not url or "utm_" not in url:
        return {}
    try:
        query = urlsplit(url).query
        pairs = parse_qsl(query, max_num_fields=200)
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for key, value in pairs:
        key = key.lower()
        if key in UTM_KEYS and key not in found:
            cleaned = clean(value, limit(Visit, key))
            if cleaned:
                found[key] = cleaned
    return found


def visit_columns(params: Mapping[str, str]) -> dict[str, Any]:
    """The browser-sent columns of a visit; HitError if dl is missing or a value is unparsable."""
    _page_url(params.get("dl"), required=True)
    row: dict[str, Any] = {}
    for key, column in VISIT_FIELDS.items():
        row[column] = clean(params.get(key), limit(Visit, column))
    if row["screen_res"] is not None:
        match = SCREEN_RES.fullmatch(row["screen_res"])
        if not match:
            raise HitError(400, "sr must be a screen size WxH, such as 1920x1080")
        row["screen_res"] = f"{int(match[1])}x{int(match[2])}"
    if row["screen_depth"] is not None:
        match = SCREEN_DEPTH.fullmatch(row["screen_depth"])
        if not match:
            raise HitError(400, "sd must be a colour depth such as 24-bit")
        row["screen_depth"] = f"{int(match[1])}-bit"
    row.update(utm_params(row["doc_uri"]))
    return row


def event_columns(params: Mapping[str, str]) -> dict[str, Any]:
    """The browser-sent columns of an event; HitError if en is missing or dl is not a URL."""
    _page_url(params.get("dl"), required=False)
    row: dict[str, Any] = {}
    for key, column in EVENT_FIELDS.items():
        row[column] = clean(params.get(key), limit(Event, column))
    if row["name"] is None:
        raise HitError(400, "missing required parameter en (the event name)")
    return row
