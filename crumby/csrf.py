"""CSRF protection for the whole app (Flask-WTF), with the few exemptions it needs.

Exempt: the tracker's hit endpoints ``/visit`` and ``/event`` (cross-site by
design, and they carry no login), anything in the ``tracking`` blueprint or
marked with :func:`exempt`, and requests that authenticate with a valid
bearer token (a browser never attaches one on its own, so there is no
ambient credential to abuse). Exemptions are by path and by name, so they
hold before the tracking blueprint exists and after it arrives.

Flask-WTF's own automatic check is switched off (``WTF_CSRF_CHECK_DEFAULT``)
and replaced by :func:`_protect`, which applies these rules first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, Response, current_app, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import ServiceUnavailable

from crumby.errors import json_error, wants_json

csrf = CSRFProtect()

EXEMPT_PATHS = frozenset({"/visit", "/event"})
EXEMPT_BLUEPRINTS = frozenset({"tracking"})
_MARK = "_crumby_csrf_exempt"
View = TypeVar("View", bound=Callable)


def exempt(view: View) -> View:
    """Decorator: this view takes cross-site POSTs without a CSRF token."""
    setattr(view, _MARK, True)
    return view


def is_exempt() -> bool:
    """Does the current request skip the CSRF check?"""
    if request.path.rstrip("/") in EXEMPT_PATHS or request.blueprint in EXEMPT_BLUEPRINTS:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, _MARK, False):
        return True
    if "Authorization" in request.headers:
        from crumby.auth import bearer_user

        return bearer_user() is not None
    return False


def _protect() -> None:
    """before_request: check the token on unsafe methods unless the request is exempt."""
    config = current_app.config
    if not config.get("WTF_CSRF_ENABLED", True) or request.method not in config.get(
        "WTF_CSRF_METHODS", ("POST", "PUT", "PATCH", "DELETE")
    ):
        return
    if request.endpoint is None or is_exempt():
        return  # an unknown path answers 404, not a CSRF error
    if not current_app.secret_key:
        if request.blueprint == "auth":
            return  # the login views answer 503 with the reason themselves
        raise ServiceUnavailable(
            "This form cannot be checked because SECRET_KEY is not set; run 'crumby init'."
        )
    csrf.protect()


def _csrf_error(exc: CSRFError) -> Response:
    """400 with the reason in words, never a 500; the login page shows its form again."""
    reason = exc.description or "The CSRF token is invalid."
    current_app.logger.info("CSRF check failed on %s %s: %s", request.method, request.path, reason)
    if request.endpoint == "auth.login":
        from crumby.auth.views import render_login

        return render_login(
            status=400,
            error=f"{reason} The login form was stale or incomplete: please try again.",
        )
    message = f"CSRF check failed: {reason} Reload the page and submit the form again."
    if wants_json():
        return json_error(400, message)
    html = render_template("error.html", code=400, name="Bad Request", description=message)
    return Response(html, status=400, mimetype="text/html")


def init_app(app: Flask) -> None:
    """Bind CSRFProtect (for ``csrf_token()`` in templates) and install the checking hook."""
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    csrf.init_app(app)
    app.before_request(_protect)
    app.register_error_handler(CSRFError, _csrf_error)
