"""Guessing passwords is slowed down per client IP and per username."""

from __future__ import annotations

import pytest
from flask import Flask

from crumby import create_app
from crumby.auth.throttle import parse_limits
from crumby.settings import ConfigError
from tests.auth.conftest import PASSWORD


@pytest.fixture
def strict(app: Flask) -> Flask:
    """Small limits so the tests reach them quickly."""
    app.config["LOGIN_LIMIT_PER_USERNAME"] = "3 per minute"
    app.config["LOGIN_LIMIT_PER_IP"] = "5 per minute"
    return app


def ip(address: str) -> dict[str, str]:
    return {"REMOTE_ADDR": address}


def test_a_username_is_throttled_after_its_failures_from_any_ip(strict, client, alice, login):
    for n in range(3):
        assert login("alice", "guess", **ip(f"192.0.2.{n}")).status_code == 401
    refused = login("alice", "guess", **ip("192.0.2.99"))
    assert refused.status_code == 429
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert f"Too many failed login attempts. Please wait {retry} seconds" in refused.text
    # even the right password waits: the throttle is checked before the password
    assert login("alice", PASSWORD, **ip("192.0.2.100")).status_code == 429
    assert client.get("/account").status_code == 302


def test_a_throttled_attempt_computes_no_password_hash(strict, alice, login, monkeypatch):
    from crumby import accounts

    for _ in range(3):
        login("alice", "guess")
    calls = []
    monkeypatch.setattr(accounts, "check_password_hash", lambda *a: calls.append(a))
    assert login("alice", "guess").status_code == 429
    assert calls == []


def test_an_ip_is_throttled_across_usernames(strict, client, alice, login):
    for n in range(5):
        assert login(f"user{n}", "guess", **ip("198.51.100.7")).status_code == 401
    assert login("someone-else", "guess", **ip("198.51.100.7")).status_code == 429
    # another address is not affected, and alice can still log in from it
    assert login("alice", PASSWORD, **ip("198.51.100.8")).status_code == 302


def test_usernames_are_throttled_regardless_of_case(strict, alice, login):
    for name in ("alice", "Alice", "ALICE"):
        login(name, "guess")
    assert login("aLiCe", "guess").status_code == 429


def test_successful_logins_do_not_count(strict, client, alice, login):
    for _ in range(6):
        assert login("alice", PASSWORD).status_code == 302
        client.get("/logout")


def test_proxy_count_makes_the_forwarded_address_count(strict, alice, login):
    strict.config["PROXY_COUNT"] = 1
    for n in range(5):
        login(f"u{n}", "guess", HTTP_X_FORWARDED_FOR="203.0.113.5", REMOTE_ADDR="10.0.0.1")
    assert (
        login("v", "guess", HTTP_X_FORWARDED_FOR="203.0.113.5", REMOTE_ADDR="10.0.0.1").status_code
        == 429
    )
    # another client behind the same proxy is not blocked
    assert (
        login("w", "guess", HTTP_X_FORWARDED_FOR="203.0.113.6", REMOTE_ADDR="10.0.0.1").status_code
        == 401
    )


def test_without_proxy_count_the_forwarded_header_is_ignored(strict, alice, login):
    for n in range(5):
        login(f"u{n}", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}", REMOTE_ADDR="10.0.0.2")
    assert (
        login("y", "guess", HTTP_X_FORWARDED_FOR="203.0.113.99", REMOTE_ADDR="10.0.0.2").status_code
        == 429
    )


def test_an_empty_limit_turns_it_off(app, alice, login):
    app.config["LOGIN_LIMIT_PER_USERNAME"] = ""
    app.config["LOGIN_LIMIT_PER_IP"] = ""
    for _ in range(12):
        assert login("alice", "guess").status_code == 401


def test_default_limits_are_in_force(app, alice, login):
    for _ in range(5):
        assert login("alice", "guess").status_code == 401
    assert login("alice", "guess").status_code == 429


@pytest.mark.parametrize(
    "key, value",
    [
        ("LOGIN_LIMIT_PER_IP", "lots"),
        ("LOGIN_LIMIT_PER_USERNAME", "5 per fortnight"),
        ("LOGIN_LIMIT_PER_IP", 5),
    ],
)
def test_a_bad_limit_setting_stops_crumby_with_one_line(key, value, tmp_path):
    with pytest.raises(ConfigError, match=key):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db", key: value})


def test_a_bad_limit_setting_from_the_environment_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUMBY_LOGIN_LIMIT_PER_IP", "often")
    with pytest.raises(ConfigError, match="LOGIN_LIMIT_PER_IP"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"})


def test_limits_read_like_flask_limiter():
    assert [str(item) for item in parse_limits("K", "5 per minute; 20/hour")] == [
        "5 per 1 minute",
        "20 per 1 hour",
    ]
    assert parse_limits("K", None) == []


def test_an_unusable_storage_uri_stops_crumby_with_one_line(tmp_path):
    with pytest.raises(ConfigError, match="LOGIN_LIMIT_STORAGE_URI: cannot use 'nosuch://place'"):
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                "LOGIN_LIMIT_STORAGE_URI": "nosuch://place",
            }
        )


def test_a_failing_counter_store_refuses_logins_with_a_503(strict, alice, login, monkeypatch):
    """Fail closed: without its counters the throttle cannot protect the passwords."""
    from crumby.auth.throttle import LoginThrottle

    def broken(self, ip, username):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(LoginThrottle, "retry_after", broken)
    response = login("alice", PASSWORD)
    assert response.status_code == 503
    assert "Logging in is unavailable" in response.text
