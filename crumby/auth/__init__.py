"""Who is asking: Flask-Login sessions for people, bearer tokens for scripts.

The blueprint ``auth`` serves ``/login``, ``/logout`` and ``/account``; this
module binds Flask-Login and decides what an unauthenticated request gets:
401 JSON on the API (scripts cannot follow a login form), a redirect to the
login page everywhere else.
"""

from __future__ import annotations

import hmac

from flask import (
    Blueprint,
    Flask,
    Request,
    current_app,
    flash,
    g,
    redirect,
    request,
    session,
    url_for,
)
from itsdangerous import BadSignature
from werkzeug.wrappers import Response

from crumby import accounts
from crumby.errors import json_error, wants_json
from crumby.extensions import db, login_manager
from crumby.models import User

bp = Blueprint("auth", __name__)

#: what a page answers when its visitor is not logged in
LOGIN_NEEDED = "Please log in to see that page."
SESSION_EXPIRED = "Your session has expired. Please log in again."
_NO_BEARER = object()


def init_app(app: Flask) -> None:
    """Bind Flask-Login with the loaders, safe cookie defaults and the login throttle."""
    from crumby.auth import throttle

    login_manager.init_app(app)
    login_manager.unauthorized_handler(unauthorized)
    # Flask's own defaults hold these keys already (HttpOnly True, SameSite None),
    # so setdefault would change nothing: fill them in unless a setting chose a value.
    if app.config.get("SESSION_COOKIE_HTTPONLY") is None:
        app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # Flask-Login's remember-me cookie is not offered, but keep its flags as strict.
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE"))
    throttle.init_app(app)
    app.extensions["crumby.auth"] = {"warned_no_secret_key": False}


def logins_enabled(app: Flask | None = None) -> bool:
    """Sessions and CSRF tokens are signed with SECRET_KEY: without one, nobody logs in."""
    return bool((app or current_app).secret_key)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Flask-Login's session lookup: the user, if the password is still the one the
    session was opened with (``User.get_id``); a changed password logs everyone out."""
    number, _, key = user_id.partition(":")
    if not number.isdigit() or not key:
        return None
    user = db.session.get(User, int(number))
    if user is None or not hmac.compare_digest(user.session_key(), key):
        return None
    return user


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer`` header, if it has one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def bearer_grant() -> accounts.Grant | None:
    """What the request's valid bearer token allows (None without one), looked up once."""
    cached = g.get("crumby_bearer_grant", _NO_BEARER)
    if cached is not _NO_BEARER:
        return cached  # type: ignore[return-value]
    token = bearer_token()
    grant = accounts.grant_for_token(token) if token else None
    g.crumby_bearer_grant = grant
    return grant


def bearer_user() -> User | None:
    """The owner of the request's bearer token, if that token has no limits.

    A token limited to a site or to ingesting is not a login: it never opens
    pages or private reports by itself (see ``bearer_grant``).
    """
    grant = bearer_grant()
    if grant is None or not grant.unrestricted:
        return None
    return db.session.get(User, grant.user_id)


@login_manager.request_loader
def load_user_from_request(request: Request) -> User | None:
    """Accept ``Authorization: Bearer <token>`` from ``crumby token``."""
    return bearer_user()


def is_api_request() -> bool:
    """The JSON API answers 401 itself instead of sending people to a form."""
    return request.path == "/api" or request.path.startswith("/api/") or wants_json()


def _session_had_login() -> bool:
    """Did this browser hold a login that is no longer valid (expired, user removed)?"""
    if "_user_id" in session:  # signed and fresh, but the user is gone
        return True
    raw = request.cookies.get(current_app.config.get("SESSION_COOKIE_NAME", "session"))
    # Flask's cookie sessions can be read without their age limit; other interfaces cannot.
    signing = getattr(current_app.session_interface, "get_signing_serializer", None)
    serializer = signing(current_app) if signing and raw else None
    if serializer is None:
        return False
    try:
        data = serializer.loads(raw)  # no max_age: an expired session still decodes
    except BadSignature:
        return False
    return isinstance(data, dict) and "_user_id" in data


def unauthorized() -> Response:
    """401 JSON for the API; for pages a redirect to /login?next=<this path>."""
    if is_api_request():
        return json_error(
            401, "authentication required: log in or send 'Authorization: Bearer <token>'"
        )
    target = request.path
    if request.query_string:
        target += "?" + request.query_string.decode("utf-8", "replace")
    if logins_enabled():
        expired = _session_had_login()
        for key in ("_user_id", "_fresh", "_id"):
            session.pop(key, None)
        flash(SESSION_EXPIRED if expired else LOGIN_NEEDED, "info")
    return redirect(url_for("auth.login", next=target))


from crumby.auth import views  # noqa: E402,F401  (registers the routes)
