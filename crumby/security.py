"""Security headers: every HTML page gets a strict Content-Security-Policy.

The policy allows scripts and styles from Crumby's own static files only, so
templates hold no inline ``<script>``, ``<style>`` or ``style=""``: an injected
visitor string cannot run even if some template forgot to escape it.
Views may set their own header first; it is kept (``setdefault``).
"""

from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
HTML_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    # frame-ancestors says it for current browsers; this is for older ones
    "X-Frame-Options": "DENY",
}


def add_security_headers(response: Response) -> Response:
    """nosniff on everything; the CSP family on HTML."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        for name, value in HTML_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Register the header hook (it also runs for error pages)."""
    app.after_request(add_security_headers)
