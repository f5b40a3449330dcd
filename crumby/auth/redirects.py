"""Where a login may send the browser next: only to a path on this same host.

A ``next`` parameter is attacker-controlled. Browsers are lenient in ways
that turn innocent-looking strings into other hosts: ``//evil`` and ``/\\evil``
are protocol-relative, tabs and newlines inside a URL are dropped (``/\\t/evil``
becomes ``//evil``), ``https:evil`` is an absolute URL, and a server or proxy
may decode ``/%2F%2Fevil`` once more before anyone looks. So the rule is
strict and checked on the raw value and on every percent-decoded form of it.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

MAX_NEXT_LENGTH = 2048
#: decoding rounds checked: enough for double encoding, bounded so input cannot loop us
_DECODE_ROUNDS = 3


def _is_plain_path(value: str, *, decoded: bool = False) -> bool:
    """A path that starts with one slash and has nothing a browser would reinterpret.

    The raw value may hold no whitespace at all; a decoded form may hold plain
    spaces (``%20`` in a query is harmless) but no tab, newline or control character.
    """
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return False
    if "\\" in value:
        return False
    if any(not ch.isprintable() or (ch.isspace() and not decoded) for ch in value):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


def safe_next(target: object, host: str) -> str | None:
    """``target`` as a same-host path, or None when it could lead anywhere else.

    A full ``http(s)://`` URL naming exactly ``host`` is accepted and reduced to its
    path, because older Flask-Login versions put ``request.url`` in ``next``.
    """
    if not isinstance(target, str) or not target or len(target) > MAX_NEXT_LENGTH:
        return None
    candidate = target
    if not candidate.startswith("/"):
        if "\\" in candidate or any(ch.isspace() or not ch.isprintable() for ch in candidate):
            return None
        parts = urlsplit(candidate)
        if parts.scheme not in ("http", "https") or parts.netloc != host or not host:
            return None
        candidate = parts.path or "/"
        if parts.query:
            candidate += "?" + parts.query
    decoded = candidate
    for round_ in range(_DECODE_ROUNDS + 1):
        if not _is_plain_path(decoded, decoded=round_ > 0):
            return None
        once_more = unquote(decoded)
        if once_more == decoded:
            return candidate
        decoded = once_more
    return None  # still changing after several rounds of decoding: refuse
