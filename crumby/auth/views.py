"""The login, logout and account pages: parse, call accounts/throttle, answer."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from crumby import accounts
from crumby.auth import bp, logins_enabled
from crumby.auth.forms import LoginForm
from crumby.auth.redirects import safe_next
from crumby.auth.throttle import client_ip, throttle
from crumby.csrf import exempt

INVALID_LOGIN = "Invalid username or password."
THROTTLE_DOWN = "Logging in is unavailable for a moment. Please try again later."
NO_SECRET_KEY = (
    "Logging in is disabled because this Crumby has no SECRET_KEY. "
    "Run 'crumby init' to write a settings file with one (or set CRUMBY_SECRET_KEY), "
    "then restart Crumby."
)


def _next_target() -> str | None:
    return safe_next(request.args.get("next"), request.host)


def render_login(
    form: LoginForm | None = None, *, status: int = 200, error: str | None = None
) -> Response:
    """The login page with an optional error line; also used by the CSRF error handler."""
    html = render_template(
        "auth/login.html",
        form=form or LoginForm(),
        error=error,
        action=url_for("auth.login", next=_next_target()),
        enabled=True,
    )
    return Response(html, status=status, mimetype="text/html")


def _logins_disabled() -> Response:
    """503 with the reason, logged once per app rather than on every visit."""
    state = current_app.extensions["crumby.auth"]
    if not state["warned_no_secret_key"]:
        state["warned_no_secret_key"] = True
        current_app.logger.warning("login refused: SECRET_KEY is not set; run 'crumby init'")
    html = render_template("auth/login.html", form=None, error=NO_SECRET_KEY, enabled=False)
    return Response(html, status=503, mimetype="text/html")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """Show the form; on POST check throttle, then password, then log in and go ``next``."""
    if not logins_enabled():
        return _logins_disabled()
    target = _next_target()
    if request.method == "GET" and current_user.is_authenticated:
        return redirect(target or url_for("dashboard.index"))
    form = LoginForm()
    if request.method == "GET":
        return render_login(form)
    if not form.validate():
        errors = [msg for field in (form.username, form.password) for msg in field.errors]
        return render_login(form, status=400, error=" ".join(errors) or INVALID_LOGIN)

    username, password = form.username.data, form.password.data
    ip = client_ip()
    try:
        wait = throttle().retry_after(ip, username)
    except Exception:  # the counter store (redis, ...) is down: fail closed
        current_app.logger.exception("login throttle storage failed; refusing logins")
        return render_login(form, status=503, error=THROTTLE_DOWN)
    if wait:
        current_app.logger.warning("login throttled for %r from %s", username[:80], ip)
        response = render_login(
            form,
            status=429,
            error=f"Too many failed login attempts. Please wait {wait} seconds and try again.",
        )
        response.headers["Retry-After"] = str(wait)
        return response

    # No account has a control character in its name (and PostgreSQL refuses NUL in a
    # query): such a name skips the lookup but still costs the same password-hash check.
    user = accounts.check_login(username if username.isprintable() else "", password)
    # Some database collations compare names case- or space-insensitively; the name is exact.
    if user is None or user.username != username:
        try:
            throttle().failed(ip, username)
        except Exception:
            current_app.logger.exception("login throttle storage failed to count a failure")
        current_app.logger.info("failed login for %r from %s", username[:80], ip)
        form.password.data = ""
        return render_login(form, status=401, error=INVALID_LOGIN)

    session.clear()  # nothing from before the login carries over into it
    login_user(user)
    session.permanent = True  # lasts PERMANENT_SESSION_LIFETIME, renewed on each visit
    current_app.logger.info("user %r logged in from %s", user.username, ip)
    return redirect(target or url_for("dashboard.index"))


@bp.route("/logout", methods=["GET", "POST"])
@exempt
def logout() -> Response:
    """End the session (GET or POST, as the contract says) and show the login page.

    No CSRF token is asked for: a GET logs out without one anyway, so a token on
    the POST would protect nothing and only break scripts that POST here.
    """
    if not logins_enabled():
        return redirect(url_for("auth.login"))
    logout_user()
    session.clear()

    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/account")
@login_required
def account() -> str:
    """A small page for the logged-in user: who they are and a logout button."""
    return render_template("auth/account.html")
