"""Access-log lines as requests: the Apache/nginx combined format and JSON lines.

A parser takes one line (text, without its newline) and returns a
``Request`` or raises ``Malformed`` with a short reason; it never raises
anything else, so a bad line costs a count and a line number, not a
traceback. Times come out as naive UTC datetimes, the way every table
stores them.

Combined (Apache's ``combined``, nginx's default ``combined``; Apache's
``vhost_combined``, which starts with ``host:port``, gives the host too)::

    203.0.113.9 - - [10/Oct/2024:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 200 2326
    "https://ref.example/" "Mozilla/5.0 ..."   (one line)

JSON lines (Ballcone's nginx ``log_format ... escape=json``): an object with
``ip host path status referrer user_agent date``, optionally ``method``
(GET when absent), ``scheme``, ``length`` and ``generation_time_milli``;
``date`` is ISO 8601 (nginx's ``$time_iso8601``) or seconds since the epoch
(``$msec``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple


class Malformed(ValueError):
    """A line that is not a request in the expected format; the message says why."""


class Request(NamedTuple):
    """What one access-log line says about one request."""

    ip: str | None
    #: the host the request was for (JSON ``host``, vhost_combined's ``%v``), None if unknown
    host: str | None
    method: str
    #: the request target: path and query string, as the client sent it
    path: str
    status: int
    referrer: str | None
    user_agent: str | None
    #: naive UTC
    time: dt.datetime
    #: ``http`` or ``https`` when the line says (JSON ``scheme``), else None
    scheme: str | None = None


Parser = Callable[[str], Request]

#: ``ip ident user [time] "request" status bytes "referrer" "user agent"``; quoted fields
#: may hold backslash escapes (``\"`` from Apache, ``\x22`` from nginx). Unnamed groups:
#: this is the hottest line of an import.
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_COMBINED_TAIL = (
    rf'([^ ]+) [^ ]+ (?:[^ ]+|"[^"]*") \[([^\]]*)\] {_QUOTED} ([^ ]+) [^ ]+ {_QUOTED} {_QUOTED}'
    r"(?:\s|$)"
)
_COMBINED = re.compile(_COMBINED_TAIL)
#: Apache's vhost_combined: ``host:port `` first
_VHOST_COMBINED = re.compile(r"([^\s:]+):\d+ " + _COMBINED_TAIL)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|(.))")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "b": "\b"}
#: a host name as nginx's ``$host`` or a Host header has it, with an optional port
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?(?::\d{1,5})?")
_METHOD = re.compile(r"[A-Z][A-Z_-]{0,19}")
_EMPTY = ("", "-")
_COMMON_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
#: the longest request target kept (longer lines are cut, as the tracker cuts URLs)
PATH_MAX = 8192


def _unescape(text: str) -> str:
    """A quoted field as the client sent it: ``\\xHH`` bytes (UTF-8) and ``\\"`` undone."""
    if "\\" not in text:
        return text
    raw = _ESCAPE.sub(
        lambda m: chr(int(m[1], 16)) if m[1] else _SIMPLE_ESCAPES.get(m[2], m[2]), text
    )
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not bytes of UTF-8 (or not only \x escapes): keep as read
        return raw


def combined_time(text: str) -> dt.datetime:
    """``10/Oct/2024:13:55:36 -0700`` as naive UTC.

    The minute is parsed once (cached: a log's lines come a minute at a time)
    and the seconds added, so a line costs a dictionary lookup and an addition.
    """
    if len(text) != 26 or text[17] != ":":
        raise Malformed(f"bad time [{text[:40]}]")
    seconds = _SECONDS.get(text[18:20])
    if seconds is None:
        raise Malformed(f"bad time [{text[:40]}]")
    return _minute(text[:17], text[20:]) + seconds


_SECONDS = {f"{n:02d}": dt.timedelta(seconds=n) for n in range(61)}  # 60: a leap second


@functools.lru_cache(maxsize=256)
def _minute(minute: str, zone: str) -> dt.datetime:
    """``10/Oct/2024:13:55`` in the zone `` -0700`` as naive UTC."""
    try:
        if minute[2] != "/" or minute[6] != "/" or minute[11] != ":" or minute[14] != ":":
            raise ValueError
        local = dt.datetime(
            int(minute[7:11]),
            _MONTHS[minute[3:6]],
            int(minute[0:2]),
            int(minute[12:14]),
            int(minute[15:17]),
        )
        if zone[0] != " " or not zone[2:].isdigit():
            raise ValueError
        sign = {"+": 1, "-": -1}[zone[1]]
        offset = dt.timedelta(hours=int(zone[2:4]), minutes=int(zone[4:6]))
    except (ValueError, KeyError, IndexError):
        raise Malformed(f"bad time [{minute}:..{zone}]") from None
    return local - sign * offset


def _request_line(request: str) -> tuple[str, str] | None:
    """Method and target of ``GET /a HTTP/1.1``, or None when it is not a request line."""
    parts = request.split(" ")
    if len(parts) == 3 and parts[0] in _COMMON_METHODS and parts[1]:
        return parts[0], parts[1]
    if len(parts) > 3 and parts[-1].startswith("HTTP/"):  # spaces in the target
        parts = [parts[0], " ".join(parts[1:-1]), parts[-1]]
    if len(parts) not in (2, 3) or not _METHOD.fullmatch(parts[0]) or not parts[1]:
        return None
    return parts[0], parts[1]


def _status(value: Any) -> int:
    if isinstance(value, bool):
        raise Malformed("status is not an HTTP status")
    try:
        status = int(value)
    except (TypeError, ValueError):
        raise Malformed("status is not an HTTP status") from None
    if not 100 <= status <= 599:
        raise Malformed(f"status {status} is not an HTTP status")
    return status


def _target(path: str) -> tuple[str | None, str]:
    """Host (of an absolute-form target) and path of a request target; Malformed if neither."""
    if path.startswith("/"):
        return None, path[:PATH_MAX]
    lower = path[:8].lower()
    if lower.startswith(("http://", "https://")):
        rest = path.split("://", 1)[1]
        host, slash, tail = rest.partition("/")
        if host and _HOST.fullmatch(host):
            return host, (slash + tail)[:PATH_MAX] or "/"
    raise Malformed("the request target is not a path")


def parse_combined(line: str) -> Request:
    """One line of the combined (or vhost_combined) format."""
    match = _COMBINED.match(line)
    if match is not None:
        vhost = None
        ip, when, request, status_text, referrer, ua = match.groups()
    else:
        match = _VHOST_COMBINED.match(line)
        if match is None:
            raise Malformed("not a combined log line")
        vhost, ip, when, request, status_text, referrer, ua = match.groups()
    status = int(status_text) if len(status_text) == 3 and status_text.isdigit() else 0
    if not 100 <= status <= 599:
        raise Malformed("status is not an HTTP status")
    time = combined_time(when)
    method_target = _request_line(_unescape(request))
    if method_target is None:
        if status >= 400:  # nginx logs junk (a TLS handshake on port 80) as 400
            return Request(None, None, "", "", status, None, None, time)
        raise Malformed("not an HTTP request line")
    method, target = method_target
    if target[0] == "/":
        host, path = vhost, target[:PATH_MAX]
    else:
        host, path = _target(target)
        host = host or vhost
    return Request(
        ip,
        host,
        method,
        path,
        status,
        None if referrer in _EMPTY else _unescape(referrer),
        None if ua in _EMPTY else _unescape(ua),
        time,
    )


@functools.lru_cache(maxsize=1024)
def iso_time(text: str) -> dt.datetime:
    """ISO 8601 (``2024-10-10T13:55:36+02:00``) as naive UTC; without an offset it is UTC."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Malformed(f"date {text[:40]!r} is not ISO 8601") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def _json_time(value: Any) -> dt.datetime:
    if isinstance(value, str):
        return iso_time(value.strip())
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)
        except (ValueError, OverflowError, OSError):
            pass
    raise Malformed("date is not a time")


def _text(item: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = item.get(key)
    if value is None or (isinstance(value, str) and value.strip() in _EMPTY):
        if required:
            raise Malformed(f"{key} is missing")
        return None
    if not isinstance(value, str):
        raise Malformed(f"{key} is not text")
    return value


def _number(item: dict[str, Any], key: str) -> None:
    """``length`` and ``generation_time_milli``: numbers when present (read, not stored)."""
    value = item.get(key)
    if value is None or isinstance(value, int | float) and not isinstance(value, bool):
        return
    if isinstance(value, str):
        if value.strip() in _EMPTY:
            return
        try:
            float(value)
            return
        except ValueError:
            pass
    raise Malformed(f"{key} is not a number")


def parse_json(line: str) -> Request:
    """One JSON object per line, with Ballcone's nginx fields."""
    try:
        item = json.loads(line)
    except (ValueError, RecursionError):
        raise Malformed("not valid JSON") from None
    if not isinstance(item, dict):
        raise Malformed("not a JSON object")
    status = _status(item.get("status"))
    when = _json_time(item.get("date"))
    method = (_text(item, "method") or "GET").upper()
    if not _METHOD.fullmatch(method):
        raise Malformed("method is not an HTTP method")
    target = _text(item, "path", required=True)
    assert target is not None
    absolute_host, path = _target(target)
    host = _text(item, "host")
    if host is not None and not _HOST.fullmatch(host):
        raise Malformed("host is not a host name")
    scheme = _text(item, "scheme")
    if scheme is not None and scheme.lower() not in ("http", "https"):
        raise Malformed("scheme is not http or https")
    _number(item, "length")
    _number(item, "generation_time_milli")
    ip = _text(item, "ip")
    return Request(
        ip=ip,
        host=host or absolute_host,
        method=method,
        path=path,
        status=status,
        referrer=_text(item, "referrer"),
        user_agent=_text(item, "user_agent"),
        time=when,
        scheme=scheme.lower() if scheme else None,
    )


def parse_any(line: str) -> Request:
    """JSON for a line that starts like JSON (``{``, or ``[``), combined otherwise."""
    return parse_json(line) if line[:1] in ("{", "[") else parse_combined(line)


#: ``--format`` choices
PARSERS: dict[str, Parser] = {"auto": parse_any, "combined": parse_combined, "json": parse_json}
