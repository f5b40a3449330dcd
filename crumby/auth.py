"""Who is asking: Flask-Login sessions for people, bearer tokens for scripts."""

from __future__ import annotations

from flask import Flask, Request

from crumby import accounts
from crumby.extensions import db, login_manager
from crumby.models import User


def init_app(app: Flask) -> None:
    """Bind Flask-Login with the user loader and the bearer-token loader."""
    login_manager.init_app(app)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Flask-Login's session lookup."""
    if not user_id.isdigit():
        return None
    return db.session.get(User, int(user_id))


@login_manager.request_loader
def load_user_from_request(request: Request) -> User | None:
    """Accept ``Authorization: Bearer <token>`` from ``crumby token``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return accounts.user_for_token(token.strip())
