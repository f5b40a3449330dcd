"""Login throttling: failed attempts counted per client IP and per username.

Built on ``limits`` (the library under Flask-Limiter) rather than
Flask-Limiter's decorators, because the username key comes from the form
body, only failures should count (a person who types the right password is
never slowed down), and the state belongs to one app
(``app.extensions["crumby.throttle"]``), not to a module-level singleton.
A throttled attempt is refused before any password hash is computed.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many, storage, strategies

from crumby.settings import ConfigError

LIMIT_KEYS = ("LOGIN_LIMIT_PER_IP", "LOGIN_LIMIT_PER_USERNAME")


def parse_limits(key: str, value: object) -> list[RateLimitItem]:
    """``"5 per minute; 20 per hour"`` as limit items; empty or None turns the limit off."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string such as '5 per minute; 20 per hour'")
    try:
        return parse_many(value)
    except ValueError:
        raise ConfigError(
            f"{key}: cannot read {value!r}; write it like '5 per minute; 20 per hour'"
        ) from None


class LoginThrottle:
    """Moving-window counters of failed logins, keyed by IP and by username."""

    def __init__(self, per_ip: list[RateLimitItem], per_username: list[RateLimitItem], uri: str):
        self.per_ip = per_ip
        self.per_username = per_username
        self._window = strategies.MovingWindowRateLimiter(_storage(uri))

    def _keys(self, ip: str, username: str) -> list[tuple[RateLimitItem, str, str]]:
        # Usernames are folded and hashed: case games do not buy more attempts,
        # and a long name does not make a long storage key.
        name = hashlib.sha256(username.strip().casefold().encode("utf-8")).hexdigest()
        return [(item, "ip", ip) for item in self.per_ip] + [
            (item, "user", name) for item in self.per_username
        ]

    def retry_after(self, ip: str, username: str) -> int:
        """Seconds until another attempt is allowed for this IP and username (0: go ahead)."""
        wait = 0.0
        for item, kind, key in self._keys(ip, username):
            if not self._window.test(item, "crumby-login", kind, key):
                reset = self._window.get_window_stats(item, "crumby-login", kind, key).reset_time
                wait = max(wait, reset - time.time())
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def failed(self, ip: str, username: str) -> None:
        """Count one failed attempt against the IP and the username."""
        for item, kind, key in self._keys(ip, username):
            self._window.hit(item, "crumby-login", kind, key)


def init_app(app: Flask) -> None:
    """Check the limit settings now, so a typo stops Crumby at start with one clear line."""
    for key in LIMIT_KEYS:
        parse_limits(key, app.config.get(key))
    _storage(app.config.get("LOGIN_LIMIT_STORAGE_URI") or "memory://")


def _storage(uri: str) -> storage.Storage:
    try:
        return storage.storage_from_string(uri)
    except Exception as exc:  # limits raises several types for a bad or unusable URI
        raise ConfigError(f"LOGIN_LIMIT_STORAGE_URI: cannot use {uri!r}: {exc}") from None


def throttle() -> LoginThrottle:
    """This app's throttle, built on first use from its current configuration."""
    app = current_app
    existing = app.extensions.get("crumby.throttle")
    if existing is None:
        existing = LoginThrottle(
            parse_limits("LOGIN_LIMIT_PER_IP", app.config.get("LOGIN_LIMIT_PER_IP")),
            parse_limits("LOGIN_LIMIT_PER_USERNAME", app.config.get("LOGIN_LIMIT_PER_USERNAME")),
            app.config.get("LOGIN_LIMIT_STORAGE_URI") or "memory://",
        )
        app.extensions["crumby.throttle"] = existing
    return existing


def client_ip() -> str:
    """The caller's address: X-Forwarded-For is believed only for PROXY_COUNT trusted hops."""
    hops = current_app.config.get("PROXY_COUNT") or 0
    if hops > 0:
        forwarded = [
            part.strip()
            for part in request.headers.get("X-Forwarded-For", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return request.remote_addr or "unknown"
