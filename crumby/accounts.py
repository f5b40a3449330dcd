"""Users and their API tokens: the operations behind ``crumby adduser`` and friends.

Passwords are stored as werkzeug scrypt hashes. API tokens are 256-bit random
strings; only their SHA-256 digest is stored, which is enough for a secret with
that much entropy and keeps each authenticated API call cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, select
from werkzeug.security import check_password_hash, generate_password_hash

from crumby.extensions import db
from crumby.models import ApiToken, User, utcnow

TOKEN_PREFIX = "cmb_"
MAX_USERNAME = 80
#: checked against when a username is unknown, so both failures take the same time
_DUMMY_HASH = generate_password_hash("crumby-dummy-password")


class AccountError(ValueError):
    """A user operation that cannot be done; the message is one line."""


def validate_username(username: str) -> str:
    """A username is 1-80 printable characters without spaces."""
    name = (username or "").strip()
    if not name:
        raise AccountError("username must not be empty")
    if len(name) > MAX_USERNAME:
        raise AccountError(f"username is longer than {MAX_USERNAME} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        raise AccountError("username must not contain spaces or control characters")
    return name


def list_usernames() -> list[str]:
    """All usernames, sorted."""
    return list(db.session.scalars(select(User.username).order_by(User.username)))


def find_user(username: str) -> User | None:
    """The user with this exact name, if any."""
    return db.session.scalar(select(User).where(User.username == username))


def add_user(username: str, password: str) -> User:
    """Create a user with a hashed password; refuses duplicates and empty passwords."""
    name = validate_username(username)
    if not password:
        raise AccountError("password must not be empty")
    if find_user(name) is not None:
        raise AccountError(f"user {name!r} already exists")
    user = User(username=name, password=generate_password_hash(password))
    db.session.add(user)
    db.session.commit()
    return user


def delete_user(username: str) -> None:
    """Remove a user and every API token they hold."""
    user = find_user(username)
    if user is None:
        raise AccountError(f"no such user: {username!r}")
    db.session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    db.session.delete(user)
    db.session.commit()


def check_login(username: str, password: str) -> User | None:
    """The user if the password matches; about the same time whether or not they exist."""
    user = find_user(username) if username else None
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    return user if check_password_hash(user.password, password or "") else None


def hash_token(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(username: str) -> str:
    """Make a new API token for a user and return it; it cannot be shown again."""
    user = find_user(username)
    if user is None:
        raise AccountError(f"no such user: {username!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=hash_token(token)))
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    """The owner of a valid API token, or None."""
    if not token or len(token) > 200:
        return None
    digest = hash_token(token)
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    row.last_used_at = utcnow()
    db.session.commit()
    return row.user
