"""HIT_RATE_LIMIT (contract sections 2 and 10): 429 with Retry-After, per trusted address.

Windows are a minute long where a test counts within one, so that no test
depends on how fast the machine is; the limiter's clock is replaced where a
test needs a window to end.
"""

from __future__ import annotations

import gc
import io
import logging
import socket
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from limits import parse
from limits.storage import MemoryStorage

from crumby import create_app
from crumby.database import ensure_schema
from crumby.extensions import db
from crumby.models import Visit
from crumby.operations import ratelimit
from crumby.operations.ratelimit import (
    MAX_ADDRESSES,
    BoundedMemoryStorage,
    HitLimiter,
    address_key,
    limiter_for,
    parse_limit,
)
from crumby.settings import ConfigError
from crumby.sites import add_site, find_site
from tests.test_operations import bearer, samples, value

PAGE = {"dl": "https://shop.example/"}


def limited_app(database_url: str, tmp_path: Path, limit: object, **config: object) -> Flask:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "limit-secret",
            "GEOIP2_DATABASE_NAME": str(tmp_path / "no-geoip.mmdb"),
            "HIT_RATE_LIMIT": limit,
            **config,
        }
    )
    ensure_schema(app)
    with app.app_context(), db.engine.begin() as connection:
        if find_site(connection, "shop.example") is None:
            add_site(connection, "shop.example")
    return app


def stored(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Visit))


def dropped(app: Flask, headers: dict[str, str], reason: str) -> float:
    page = app.test_client().get("/metrics", headers=headers).get_data(as_text=True)
    return value(samples(page), "crumby_hits_dropped_total", reason=reason)


def test_hits_over_the_limit_get_429_with_retry_after_and_are_not_stored(
    app: Flask, database_url, tmp_path
):
    limited = limited_app(database_url, tmp_path, "5/minute")
    auth = bearer(limited)
    before = dropped(limited, auth, "rate_limited")
    client = limited.test_client()
    first = [client.post("/visit", data=PAGE).status_code for _ in range(5)]
    assert first == [204] * 5
    over = [client.post("/visit", data=PAGE), client.get("/visit?dl=https://shop.example/")]
    for response in over:
        assert response.status_code == 429
        assert response.get_json() == {"error": "too many hits from this address"}
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    # events count against the same address
    assert client.post("/event", data={"en": "buy", **PAGE}).status_code == 429
    assert stored(limited) == 5
    assert dropped(limited, auth, "rate_limited") - before == 3
    # another address is not affected
    other = client.post("/visit", data=PAGE, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 204
    assert stored(limited) == 6
    # HEAD stores nothing and is not counted; preflights neither
    assert client.head("/visit?dl=https://shop.example/").status_code == 200
    assert client.options("/visit").status_code == 204
    with limited.app_context():
        db.engine.dispose()


def test_none_turns_the_limit_off(app: Flask, database_url, tmp_path):
    for off in (None, "None", "off", ""):
        unlimited = limited_app(database_url, tmp_path, off)
        assert limiter_for(unlimited) is None
    client = unlimited.test_client()
    answers = [client.post("/visit", data=PAGE).status_code for _ in range(60)]
    assert answers == [204] * 60
    assert stored(unlimited) == 60
    with unlimited.app_context():
        db.engine.dispose()


def test_the_limit_counts_the_trusted_address_behind_proxies(tmp_path):
    url = f"sqlite:///{tmp_path / 'proxy.db'}"
    behind = limited_app(url, tmp_path, "2/minute", PROXY_COUNT=1)
    client = behind.test_client()

    def hit(forwarded: str) -> int:
        return client.post("/visit", data=PAGE, headers={"X-Forwarded-For": forwarded}).status_code

    # the proxy's own address is shared; the visitor's, from the header, is what counts
    assert [hit("203.0.113.1"), hit("203.0.113.1"), hit("203.0.113.1")] == [204, 204, 429]
    assert hit("203.0.113.2") == 204
    # a forged extra entry in front of the trusted one buys nothing
    assert hit("10.9.9.9, 203.0.113.1") == 429
    direct = limited_app(url, tmp_path, "2/minute")
    client = direct.test_client()
    # without PROXY_COUNT the header is ignored: rotating it does not help
    answers = [hit(f"203.0.113.{n}") for n in range(3)]
    assert answers == [204, 204, 429]


def test_ipv6_clients_are_counted_per_64():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("203.0.113.9") == "203.0.113.9"
    assert address_key(None) == "unknown"


def test_a_window_ends_and_the_address_may_send_again():
    now = [1000.0]
    store = BoundedMemoryStorage(clock=lambda: now[0])
    limiter = HitLimiter(parse_limit("3/minute"), store, 0, clock=lambda: now[0])
    environ = {"REMOTE_ADDR": "192.0.2.1"}
    assert [limiter.check(environ) for _ in range(4)] == [0, 0, 0, 60]
    now[0] += 45
    assert limiter.check(environ) == 15  # Retry-After counts down to the window's end
    now[0] += 15
    assert limiter.check(environ) == 0


def test_bad_settings_stop_crumby_with_one_line(tmp_path):
    for bad in ("lots", "20 per fortnight", 20):
        with pytest.raises(ConfigError, match="HIT_RATE_LIMIT"):
            create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "HIT_RATE_LIMIT": bad})
    assert len(parse_limit("20/second; 600/minute")) == 2


def test_a_failing_store_lets_hits_through_and_says_so(caplog):
    class Down(BoundedMemoryStorage):
        def incr(self, key, expiry, amount=1):
            raise ConnectionError("redis is down")

    logger = logging.getLogger("crumby-test-limiter")
    limiter = HitLimiter(parse_limit("1/minute"), Down(), 0, logger)
    with caplog.at_level(logging.WARNING, logger="crumby-test-limiter"):
        answers = [limiter.check({"REMOTE_ADDR": "192.0.2.1"}) for _ in range(5)]
    assert answers == [0] * 5
    warnings = [r for r in caplog.records if "store failed" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a hit


def _wsgi_hit(app: Flask, address: str) -> str:
    """An invalid POST /visit (no dl) through the whole WSGI stack: counted, then 400."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/visit",
        "REMOTE_ADDR": address,
        "CONTENT_LENGTH": "0",
        "wsgi.input": io.BytesIO(b""),
    }
    statuses = []
    app.wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    return statuses[0]


def addresses(start: int, count: int) -> list[str]:
    return [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(start, start + count)]


def test_memory_stays_bounded_under_100000_distinct_addresses(tmp_path):
    app = limited_app(f"sqlite:///{tmp_path / 'flood.db'}", tmp_path, "20/minute")
    # the hit path itself: 100,000 addresses through the WSGI layers keep at most the cap
    assert _wsgi_hit(app, "192.0.2.1").startswith("400")
    store = limiter_for(app).store
    assert isinstance(store, BoundedMemoryStorage)
    for address in addresses(0, 100_000):
        _wsgi_hit(app, address)
    assert len(store) == MAX_ADDRESSES
    assert _wsgi_hit(app, "10.1.134.159").startswith("400")  # the newest still counted...
    assert store.get("LIMITER/crumby-hit/10.1.134.159/20/1/minute") == 2

    # ... and the bytes: measured with tracemalloc on the limiter alone (same store type)
    now = [0.0]
    store = BoundedMemoryStorage(clock=lambda: now[0])
    limiter = HitLimiter(parse_limit("20/minute"), store, 0, clock=lambda: now[0])
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for address in addresses(0, 100_000):
            limiter.check({"REMOTE_ADDR": address})
        first = tracemalloc.get_traced_memory()[0] - start
        for address in addresses(100_000, 25_000):
            limiter.check({"REMOTE_ADDR": address})
        second = tracemalloc.get_traced_memory()[0] - start
        # a minute later every window has ended: the next address's arrival frees them
        now[0] += 61
        limiter.check({"REMOTE_ADDR": "192.0.2.200"})
        gc.collect()
        freed = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert len(store) == 1
    assert first < 25_000_000  # about 340 bytes per address kept, 50,000 kept
    assert second - first < 500_000  # a quarter more addresses: no more memory
    assert freed < first / 2


def test_the_limits_memory_storage_is_not_what_memory_uri_gives():
    """``memory://`` means the bounded store: limits' own sweeps every key every 10 ms."""
    assert isinstance(ratelimit.store_for("memory://"), BoundedMemoryStorage)
    assert not isinstance(ratelimit.store_for("memory://"), MemoryStorage)
    with pytest.raises(ConfigError, match="cannot use"):
        ratelimit.store_for("nosuch://place")
    assert parse("20/second").get_expiry() == 1


@pytest.fixture
def redis_url(tmp_path: Path):
    """A private redis-server on a free loopback port (not persisted), stopped afterwards."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
                break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}", server
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


def test_workers_sharing_a_redis_store_count_together(tmp_path, redis_url):
    url, server = redis_url
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    # two apps stand for two server processes: each has its own memory
    first, second = (
        limited_app(database, tmp_path, "4/minute", LOGIN_LIMIT_STORAGE_URI=url) for _ in range(2)
    )
    a, b = first.test_client(), second.test_client()
    answers = [
        a.post("/visit", data=PAGE).status_code,
        b.post("/visit", data=PAGE).status_code,
        a.post("/visit", data=PAGE).status_code,
        b.post("/visit", data=PAGE).status_code,
        a.post("/visit", data=PAGE).status_code,
        b.post("/visit", data=PAGE).status_code,
    ]
    assert answers == [204, 204, 204, 204, 429, 429]
    assert 1 <= int(b.post("/visit", data=PAGE).headers["Retry-After"]) <= 60
    # with memory:// each process counts alone: the same six hits all pass
    alone = [limited_app(database, tmp_path, "4/minute") for _ in range(2)]
    a, b = (app.test_client() for app in alone)
    assert [c.post("/visit", data=PAGE).status_code for c in (a, b, a, b, a, b)] == [204] * 6
    # the shared store goes away: hits are accepted, not refused
    server.terminate()
    server.wait(timeout=30)
    assert first.test_client().post("/visit", data=PAGE).status_code == 204


def test_measurement_protocol_hits_and_app_event_batches_share_the_limit(
    app: Flask, database_url, tmp_path
):
    limited = limited_app(database_url, tmp_path, "2/minute")
    client = limited.test_client()
    hit = "/collect?v=1&t=pageview&tid=shop.example&cid=c1&dl=https%3A%2F%2Fshop.example%2F"
    assert [client.get(hit).status_code for _ in range(2)] == [200, 200]
    refused = client.get(hit)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert stored(limited) == 2
    # an app's batch from the same address is turned away before its token is even read
    batch = client.post("/api/events", json=[{"name": "signup"}])
    assert batch.status_code == 429
    assert "Retry-After" in batch.headers
    # another address may still send
    other = client.get(hit, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert other.status_code == 200
    assert stored(limited) == 3


def test_20000_hits_from_one_address_store_only_the_default_limits_worth(
    app: Flask, database_url, tmp_path
):
    """A flood from one client (contract section 10): the default HIT_RATE_LIMIT answers it
    with 429s and the database is not filled. The limiter's clock is pinned, so the whole
    flood falls in one window however fast this machine is."""
    from limits import strategies

    flood = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "limit-secret",
            "GEOIP2_DATABASE_NAME": str(tmp_path / "no-geoip.mmdb"),
        }
    )  # HIT_RATE_LIMIT as shipped
    ensure_schema(flood)
    with flood.app_context(), db.engine.begin() as connection:
        if find_site(connection, "shop.example") is None:
            add_site(connection, "shop.example")
    [item] = parse_limit(flood.config["HIT_RATE_LIMIT"])
    limiter = limiter_for(flood)
    frozen = [5000.0]
    limiter.store = BoundedMemoryStorage(clock=lambda: frozen[0])
    limiter.window = strategies.FixedWindowRateLimiter(limiter.store)
    limiter.clock = lambda: frozen[0]
    auth = bearer(flood)
    before = dropped(flood, auth, "rate_limited")

    client = flood.test_client()
    statuses: dict[int, int] = {}
    for n in range(20_000):
        if n % 3 == 0:
            answer = client.get(f"/visit?dl=https://shop.example/p{n}")
        elif n % 3 == 1:
            answer = client.post("/visit", data={"dl": f"https://shop.example/p{n}"})
        else:
            answer = client.post("/event", data={"en": "click", **PAGE})
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        if answer.status_code == 429:
            assert answer.headers["Retry-After"] == "1", n
    accepted = sum(count for status, count in statuses.items() if status in (200, 204))
    assert accepted == item.amount and statuses[429] == 20_000 - item.amount, statuses
    with flood.app_context():
        events = db.session.scalar(sa.text("SELECT COUNT(*) FROM events"))
    assert stored(flood) + events == item.amount  # the database holds what was accepted, no more
    assert dropped(flood, auth, "rate_limited") - before == 20_000 - item.amount
    # the next window lets the address in again
    frozen[0] += 1
    assert client.post("/visit", data=PAGE).status_code == 204
    with flood.app_context():
        db.engine.dispose()
