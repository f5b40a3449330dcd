"""The login form: Flask-WTF, so it carries and checks its CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

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
