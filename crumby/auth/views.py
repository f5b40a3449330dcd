"""The login, logout and account pages: parse, call accounts/throttle, answer.

The account page shares its logic with ``crumby adduser`` and ``crumby token``
(``crumby.accounts``): the same rules, the same stored forms.
"""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from crumby import accounts
from crumby.auth import bp, logins_enabled
from crumby.auth.forms import LoginForm, PasswordForm, RevokeTokenForm, TokenForm
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


def _sentence(message: str) -> str:
    """An accounts error ("no such API token") as a sentence for the page."""
    return message[:1].upper() + message[1:] + "."


def _token_form(bound: bool = True) -> TokenForm:
    """The new-token form with every registered site to choose from (``bound``: to the POST)."""
    from crumby.extensions import db
    from crumby.sites import all_sites

    form = TokenForm() if bound else TokenForm(formdata=None)
    with db.engine.connect() as connection:
        hosts = [SelectChoice(s.host) for s in all_sites(connection)]
    form.site.choices = [SelectChoice("", "every site"), *hosts]
    return form


def render_account(
    *,
    status: int = 200,
    password_form: PasswordForm | None = None,
    token_form: TokenForm | None = None,
    new_token: str | None = None,
    token_error: str | None = None,
) -> Response:
    """The account page: password change, API tokens (a new one shown once), logout.

    Without SECRET_KEY (a bearer token can still open it) no form can carry a
    CSRF token: the page lists the tokens and says how to enable the forms.
    """
    if not logins_enabled():
        html = render_template(
            "auth/account.html", tokens=accounts.list_tokens(current_user.username), forms=False
        )
        return Response(html, status=status, mimetype="text/html")
    html = render_template(
        "auth/account.html",
        forms=True,
        password_form=password_form or PasswordForm(formdata=None),
        token_form=token_form or _token_form(bound=False),
        revoke_form=RevokeTokenForm(formdata=None),
        tokens=accounts.list_tokens(current_user.username),
        new_token=new_token,
        token_error=token_error,
    )
    response = Response(html, status=status, mimetype="text/html")
    # a page that may hold a new token, or the forms' tokens, is kept by no cache
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/account")
@login_required
def account() -> Response:
    """The logged-in user's page: change the password, list, make and revoke API tokens."""
    return render_account()


@bp.post("/account/password")
@login_required
def change_password() -> Response:
    """Change the password; the current one is required, and wrong guesses are throttled."""
    form = PasswordForm()
    if not form.validate():
        return render_account(status=400, password_form=form)
    name, ip = current_user.username, client_ip()
    try:
        wait = throttle().retry_after(ip, name)
    except Exception:  # the counter store is down: fail closed, as the login does
        current_app.logger.exception("login throttle storage failed; refusing password change")
        form.current.errors = [THROTTLE_DOWN]
        return render_account(status=503, password_form=form)
    if wait:
        form.current.errors = [f"Too many wrong passwords. Please wait {wait} seconds."]
        response = render_account(status=429, password_form=form)
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        accounts.change_password(name, form.current.data, form.new.data)
    except accounts.AccountError as exc:
        try:
            throttle().failed(ip, name)
        except Exception:
            current_app.logger.exception("login throttle storage failed to count a failure")
        form.current.errors = [_sentence(str(exc))]
        return render_account(status=400, password_form=form)
    current_app.logger.info("user %r changed their password", name)
    # every other session of the user ends with the old password (crumby.auth.load_user):
    # this one goes on, under the new key
    login_user(accounts.find_user(name))
    flash("Your password has been changed. Other sessions have been logged out.", "info")
    return redirect(url_for("auth.account"))


@bp.post("/account/tokens")
@login_required
def create_token() -> Response:
    """Make an API token and show it on the page this once (it is stored only hashed)."""
    form = _token_form()
    if not form.validate():
        error = " ".join(form.site.errors + form.ingest_only.errors) or "Please try again."
        return render_account(status=400, token_form=form, token_error=error)
    try:
        token = accounts.create_token(
            current_user.username, site=form.site.data or None, ingest_only=form.ingest_only.data
        )
    except accounts.AccountError as exc:  # the site was deleted since the page was shown
        return render_account(status=400, token_form=form, token_error=str(exc))
    current_app.logger.info("user %r made an API token", current_user.username)
    return render_account(new_token=token)


@bp.post("/account/tokens/<int(max=2147483647):token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Response:
    """Delete one of the user's API tokens: requests with it get 401 from now on."""
    if not RevokeTokenForm().validate():
        abort(400, description="The form was incomplete: please try again.")
    try:
        accounts.revoke_token(current_user.username, token_id)
    except accounts.AccountError as exc:
        abort(404, description=_sentence(str(exc)))
    flash("Revoked the API token: requests that send it are refused from now on.", "info")
    return redirect(url_for("auth.account") + "#tokens")
