"""Security headers: every HTML page gets a strict Content-Security-Policy.

The policy allows scripts and styles from Crumby's own static files only, so
templates hold no inline ``<script>``, ``<style>`` or ``style=""``: an injected
visitor string cannot run even if some template forgot to escape it.
Views may set their own header first; it is kept (``setdefault``). Pages are
never framed (``frame-ancestors 'none'``), except the embeddable cards, which
call :func:`allow_framing`.
"""

from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
#: the one difference of an embeddable card: any page may frame it
FRAMEABLE_POLICY = CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", "frame-ancestors *")
HTML_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    # frame-ancestors says it for current browsers; this is for older ones
    "X-Frame-Options": "DENY",
}


def allow_framing(response: Response) -> Response:
    """Let other sites' pages frame this response (an embed card); nothing else changes."""
    response.headers["Content-Security-Policy"] = FRAMEABLE_POLICY
    response.headers["X-Crumby-Frameable"] = "1"  # read (and removed) by add_security_headers
    return response


def add_security_headers(response: Response) -> Response:
    """nosniff on everything; the CSP family on HTML."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    frameable = response.headers.pop("X-Crumby-Frameable", None) is not None
    if response.mimetype == "text/html":
        for name, value in HTML_HEADERS.items():
            if frameable and name == "X-Frame-Options":
                continue
            response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Register the header hook (it also runs for error pages)."""
    app.after_request(add_security_headers)
