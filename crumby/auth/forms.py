"""The login and account forms: Flask-WTF, so each carries and checks its CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

#: generous bounds that still keep a hostile request from feeding megabytes to scrypt
MAX_USERNAME_INPUT = 200
MAX_PASSWORD_INPUT = 1024


class LoginForm(FlaskForm):
    """Username and password; the CSRF token field comes from FlaskForm."""

    username = StringField(
        "Username",
        validators=[DataRequired("Enter your username."), Length(max=MAX_USERNAME_INPUT)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=MAX_PASSWORD_INPUT)],
        render_kw={"autocomplete": "current-password"},
    )


class PasswordForm(FlaskForm):
    """The account page's password change: the current password, then the new one twice."""

    current = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=MAX_PASSWORD_INPUT)],
        render_kw={"autocomplete": "current-password"},
    )
    new = PasswordField(
        "New password",
        validators=[DataRequired("Enter a new password."), Length(max=MAX_PASSWORD_INPUT)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "New password again",
        validators=[
            DataRequired("Enter the new password a second time."),
            EqualTo("new", "The two new passwords are not the same."),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class TokenForm(FlaskForm):
    """A new API token: every site or one, and whether it may only send data."""

    site = SelectField(
        "Site", choices=[SelectChoice("", "every site")], default="", validate_choice=True
    )
    ingest_only = BooleanField("Ingest only: may send events, may not read reports")


class RevokeTokenForm(FlaskForm):
    """The CSRF token of a token's revoke button."""
