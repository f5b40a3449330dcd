"""HIT_RATE_LIMIT: hits accepted per client address, counted with the ``limits`` package.

The limit is a fixed window per address (``limits``' FixedWindowRateLimiter,
the cheapest of its strategies: one counter per address and window). The
address is the trusted one (``crumby.tracking.enrich.client_ip`` with
PROXY_COUNT); IPv6 clients are counted per /64, the block one subscriber
usually holds, so that rotating through it buys nothing.

The counters live where the login throttle's do (LOGIN_LIMIT_STORAGE_URI):

- ``memory://`` (the default): in this process, so each server process
  counts on its own (gunicorn with two workers lets up to twice the limit
  through). ``limits``' own memory storage keeps every address until a timer
  thread sweeps all of them, every 10 ms, holding the GIL for the whole sweep
  (measured here: 17 us a hit with 100,000 live addresses, about 3 us with
  the store below); so here it is
  ``BoundedMemoryStorage``, which holds at most ``MAX_ADDRESSES`` windows and
  reclaims expired ones as new ones arrive, without a thread.
- ``redis://HOST:PORT`` (needs the ``redis`` package): one store shared by
  every worker and every server, which then count together; Redis expires the
  keys by itself.

A limiter store that fails (Redis down) lets hits through rather than turn
them away: the limit protects the database, it must not become an outage.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask
from limits import RateLimitItem, parse_many, storage, strategies

from crumby.settings import ConfigError
from crumby.tracking.enrich import client_ip

SETTING = "HIT_RATE_LIMIT"
#: the ``limits`` namespace of hit counters (the login throttle's is ``crumby-login``)
NAMESPACE = "crumby-hit"
#: most addresses the in-memory store keeps a window for (about 200 bytes each)
MAX_ADDRESSES = 50_000
#: values that turn the limit off (None in a settings file, these in the environment)
OFF = ("", "none", "off", "false", "0")
#: how often a failing store is logged
LOG_EVERY_SECONDS = 60.0


def parse_limit(value: object) -> list[RateLimitItem]:
    """HIT_RATE_LIMIT as limit items (``'20/second'``, ``'20/second; 600/minute'``); [] is off."""
    if value is None or (isinstance(value, str) and value.strip().lower() in OFF):
        return []
    if not isinstance(value, str):
        raise ConfigError(f"{SETTING} must be a string such as '20/second', or None")
    try:
        return parse_many(value)
    except ValueError:
        raise ConfigError(
            f"{SETTING}: cannot read {value!r}; write it like '20/second' or '600/minute', "
            "or None to turn the limit off"
        ) from None


class BoundedMemoryStorage(storage.Storage):
    """Fixed-window counters in one ordered dict of at most ``max_keys`` entries.

    A window that starts goes to the back, so expired windows gather at the
    front and each new window first drops them from there: no sweeping
    thread, and amortised O(1) per hit. When the store is full of live
    windows (more than ``max_keys`` addresses in one window), the oldest is
    dropped: that address starts counting afresh, which lets it through
    sooner but never lets memory grow.
    """

    STORAGE_SCHEME = None  # not a scheme of its own: "memory://" picks it (``store_for``)

    def __init__(
        self, max_keys: int = MAX_ADDRESSES, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(None)
        self.max_keys = max_keys
        self.clock = clock
        self.lock = threading.Lock()
        #: key -> [hits in the window, end of the window (epoch seconds)]
        self.windows: OrderedDict[str, list[float]] = OrderedDict()

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Count ``amount`` hits in the key's window, opening one if none is live."""
        now = self.clock()
        with self.lock:
            window = self.windows.get(key)
            if window is None or window[1] <= now:
                if window is not None:
                    del self.windows[key]
                self._make_room(now)
                window = self.windows[key] = [0, now + expiry]
            window[0] += amount
            return int(window[0])

    def _make_room(self, now: float) -> None:
        windows = self.windows
        while windows:
            _key, oldest = next(iter(windows.items()))
            if oldest[1] > now and len(windows) < self.max_keys:
                return
            windows.popitem(last=False)

    def get(self, key: str) -> int:
        """Hits in the key's live window (0 if none)."""
        window = self.windows.get(key)
        if window is None or window[1] <= self.clock():
            return 0
        return int(window[0])

    def get_expiry(self, key: str) -> float:
        """When the key's window ends (now if it has none)."""
        window = self.windows.get(key)
        return window[1] if window is not None else self.clock()

    def check(self) -> bool:
        """Always reachable."""
        return True

    def reset(self) -> int | None:
        """Forget every window; returns how many there were."""
        with self.lock:
            count = len(self.windows)
            self.windows.clear()
        return count

    def clear(self, key: str) -> None:
        """Forget one key's window."""
        with self.lock:
            self.windows.pop(key, None)

    def __len__(self) -> int:
        return len(self.windows)


def store_for(uri: str) -> storage.Storage:
    """The store a LOGIN_LIMIT_STORAGE_URI names: the bounded one for ``memory://``."""
    if uri.strip().lower().startswith("memory://"):
        return BoundedMemoryStorage()
    from crumby.auth.throttle import _storage

    return _storage(uri)


def address_key(address: str | None) -> str:
    """What one client's hits are counted under: its IPv4 address, its IPv6 /64."""
    if not address:
        return "unknown"
    if ":" not in address:
        return address
    try:
        network = ipaddress.IPv6Network(f"{address}/64", strict=False)
    except ValueError:
        return address[:64]
    return str(network.network_address) + "/64"


class HitLimiter:
    """HIT_RATE_LIMIT for one app: ``check(environ)`` before a hit is read."""

    def __init__(
        self,
        items: list[RateLimitItem],
        store: storage.Storage,
        proxy_count: int,
        logger: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.items = items
        self.store = store
        self.clock = clock
        self.window = strategies.FixedWindowRateLimiter(store)
        self.proxy_count = proxy_count
        self.logger = logger
        self._logged_at = -math.inf

    def check(self, environ: Mapping[str, Any]) -> int:
        """Count the hit; 0 to accept it, else the seconds until this address may send again."""
        forwarded = environ.get("HTTP_X_FORWARDED_FOR") if self.proxy_count else None
        if forwarded:
            address = client_ip(environ.get("REMOTE_ADDR"), forwarded, self.proxy_count)
        else:  # the server's own peer address: no header to distrust, nothing to parse
            address = environ.get("REMOTE_ADDR")
        key = address_key(address)
        wait = 0
        try:
            for item in self.items:
                if not self.window.hit(item, NAMESPACE, key):
                    reset = self.window.get_window_stats(item, NAMESPACE, key).reset_time
                    wait = max(wait, math.ceil(reset - self.clock()), 1)
        except Exception as exc:  # the store is down (Redis): accept the hit, say so now and then
            now = time.monotonic()
            if self.logger is not None and now - self._logged_at >= LOG_EVERY_SECONDS:
                self._logged_at = now
                self.logger.warning("hit rate limit not applied: its store failed: %s", exc)
            return 0
        return wait


def build(app: Flask) -> HitLimiter | None:
    """The app's limiter from its settings, or None when HIT_RATE_LIMIT is off."""
    items = parse_limit(app.config.get(SETTING))
    if not items:
        return None
    uri = app.config.get("LOGIN_LIMIT_STORAGE_URI") or "memory://"
    return HitLimiter(items, store_for(uri), int(app.config.get("PROXY_COUNT") or 0), app.logger)


def init_app(app: Flask) -> None:
    """Read HIT_RATE_LIMIT now, so that a typo stops Crumby at start with one clear line."""
    parse_limit(app.config.get(SETTING))


_NOT_BUILT = object()
_BUILD_LOCK = threading.Lock()


def limiter_for(app: Flask) -> HitLimiter | None:
    """The app's limiter, built on the first hit (after any fork), or None when off."""
    limiter = app.extensions.get("crumby.hit_limiter", _NOT_BUILT)
    if limiter is _NOT_BUILT:
        with _BUILD_LOCK:
            limiter = app.extensions.get("crumby.hit_limiter", _NOT_BUILT)
            if limiter is _NOT_BUILT:
                limiter = app.extensions["crumby.hit_limiter"] = build(app)
    return limiter  # type: ignore[return-value]
