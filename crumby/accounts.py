"""Users and their API tokens: the operations behind ``crumby adduser`` and friends.

Passwords are stored as werkzeug scrypt hashes. API tokens are 256-bit random
strings; only their SHA-256 digest is stored, which is enough for a secret with
that much entropy and keeps each authenticated API call cheap.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from werkzeug.security import check_password_hash, generate_password_hash

from crumby.extensions import db
from crumby.models import ApiToken, Site, User, utcnow

TOKEN_PREFIX = "cmb_"
MAX_USERNAME = 80
#: ``last_used_at`` is written at most this often per token, so that a script sending
#: many requests does not turn each into a write
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@functools.cache
def _dummy_hash() -> str:
    """Checked against when a username is unknown, so both failures take the same time.

    Made on first use, not at import: a hash costs about 0.1 s, which every
    command-line start would otherwise pay."""
    return generate_password_hash("crumby-dummy-password")


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


def change_password(username: str, current: str, new: str) -> None:
    """Set a new password after checking the current one (the account page's form).

    AccountError for a wrong current password or an empty new one; nothing
    changes then.
    """
    user = find_user(username)
    if user is None:
        raise AccountError(f"no such user: {username!r}")
    if not check_password_hash(user.password, current or ""):
        raise AccountError("the current password is not right")
    if not new:
        raise AccountError("password must not be empty")
    user.password = generate_password_hash(new)
    db.session.commit()


def check_login(username: str, password: str) -> User | None:
    """The user if the password matches; about the same time whether or not they exist."""
    user = find_user(username) if username else None
    if user is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    return user if check_password_hash(user.password, password or "") else None


def hash_token(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Grant:
    """What a valid API token allows: its user, and the limits it was created with."""

    user_id: int
    #: the one site it is for (id and host), or None for every site
    site_id: int | None
    site_host: str | None
    #: it may send data but not read reports
    ingest_only: bool

    @property
    def unrestricted(self) -> bool:
        """A token without limits acts as its user (pages, every report, no CSRF token)."""
        return self.site_id is None and not self.ingest_only

    def may_read(self, site_id: int) -> bool:
        """May it read this site's reports?"""
        return not self.ingest_only and self.site_id in (None, site_id)

    def may_send(self, site_id: int) -> bool:
        """May it send events and hits for this site?"""
        return self.site_id in (None, site_id)


def create_token(username: str, site: str | None = None, ingest_only: bool = False) -> str:
    """Make a new API token for a user and return it; it cannot be shown again.

    ``site`` (a registered host) limits it to that site; ``ingest_only`` to
    sending data. AccountError for an unknown user or site.
    """
    user = find_user(username)
    if user is None:
        raise AccountError(f"no such user: {username!r}")
    site_id = None
    if site is not None:
        from crumby.sites import find_site

        with db.engine.connect() as connection:
            found = find_site(connection, site)
        if found is None:
            raise AccountError(f"no such site: {site[:253]} (crumby sites lists them)")
        site_id = found.id
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(
        ApiToken(
            user_id=user.id,
            token_hash=hash_token(token),
            site_id=site_id,
            ingest_only=ingest_only,
        )
    )
    db.session.commit()
    return token


def grant_for_token(token: str) -> Grant | None:
    """What a valid API token allows, or None for an unknown one (or one whose site is gone)."""
    if not token or len(token) > 200:
        return None
    digest = hash_token(token)
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    host = None
    if row.site_id is not None:
        host = db.session.scalar(select(Site.host).where(Site.id == row.site_id))
        if host is None:  # its site was deleted: the token is for nothing
            return None
    grant = Grant(row.user_id, row.site_id, host, bool(row.ingest_only))
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        db.session.commit()
    return grant


def user_for_token(token: str) -> User | None:
    """The owner of a valid token without limits (site or ingest-only), or None.

    Only such a token stands in for a login; a limited one is checked by
    the endpoints it may use (``grant_for_token``).
    """
    grant = grant_for_token(token)
    if grant is None or not grant.unrestricted:
        return None
    return db.session.get(User, grant.user_id)


@dataclass(frozen=True)
class TokenInfo:
    """One API token as its owner sees it listed: never the token itself (only its hash is kept)."""

    id: int
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    #: the host it is limited to, or None for every site
    site_host: str | None
    ingest_only: bool

    def describe(self) -> str:
        """What it may do, in a few words."""
        reach = f"site {self.site_host}" if self.site_host else "every site"
        return f"{'sends data only' if self.ingest_only else 'reads and sends'}, {reach}"


def list_tokens(username: str) -> list[TokenInfo]:
    """A user's API tokens, oldest first; AccountError for an unknown user."""
    user = find_user(username)
    if user is None:
        raise AccountError(f"no such user: {username!r}")
    rows = db.session.execute(
        select(
            ApiToken.id,
            ApiToken.created_at,
            ApiToken.last_used_at,
            Site.host,
            ApiToken.ingest_only,
        )
        .outerjoin(Site, Site.id == ApiToken.site_id)
        .where(ApiToken.user_id == user.id)
        .order_by(ApiToken.id)
    )
    return [TokenInfo(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]


def revoke_token(username: str, token_id: int) -> None:
    """Delete one of a user's API tokens; AccountError if they hold no token with that id."""
    user = find_user(username)
    if user is None:
        raise AccountError(f"no such user: {username!r}")
    gone = db.session.execute(
        delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
    ).rowcount
    if not gone:
        db.session.rollback()
        raise AccountError("no such API token (revoked already?)")
    db.session.commit()
