"""A site owner logs in through the form, sees who they are, and logs out."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask_login import login_required

from crumby import accounts
from tests.auth.conftest import PASSWORD, csrf_token, without_token


def test_login_form_has_username_password_and_csrf_token(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert 'name="username"' in page.text
    assert 'name="password"' in page.text
    assert csrf_token(page.text)


def test_logging_in_opens_the_account_page(client, alice, login):
    assert client.get("/account").status_code == 302
    response = login("alice", PASSWORD, next="/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    page = client.get("/account")
    assert page.status_code == 200
    assert "Logged in as" in page.text and ">alice<" in page.text


def test_without_next_a_login_goes_to_the_dashboard(client, alice, login):
    response = login("alice", PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_a_protected_page_sends_visitors_to_the_login_with_next(client):
    response = client.get("/account?tab=tokens")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/account?tab%3Dtokens"
    page = client.get(response.headers["Location"])
    assert "Please log in to see that page." in page.text
    # the form posts back to the same next
    assert 'action="/login?next=/account?tab%3Dtokens"' in page.text


def test_the_login_page_sends_a_logged_in_user_on(client, alice, login):
    login("alice", PASSWORD)
    response = client.get("/login?next=/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"


def test_wrong_password_and_unknown_user_get_the_same_answer(client, alice, login):
    wrong = login("alice", "not the password")
    unknown = login("mallory", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Invalid username or password." in wrong.text
    # the form keeps what was typed as the username; everything else is identical
    assert without_token(wrong.text).replace('value="alice"', 'value="?"') == without_token(
        unknown.text
    ).replace('value="mallory"', 'value="?"')
    assert client.get("/account").status_code == 302  # still not logged in


def test_wrong_password_and_unknown_user_both_check_a_password_hash(
    client, alice, login, monkeypatch
):
    """Equal work on both paths is what keeps their timing alike."""
    checked: list[str] = []
    real = accounts.check_password_hash

    def spy(pwhash: str, password: str) -> bool:
        checked.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(accounts, "check_password_hash", spy)
    login("alice", "not the password")
    login("nobody-by-this-name", "not the password")
    assert len(checked) == 2
    assert all(h.startswith("scrypt:") for h in checked)


def test_username_must_match_exactly(client, alice, login):
    """MySQL's collations compare case-insensitively; a login does not."""
    assert login("ALICE", PASSWORD).status_code == 401
    assert login("alice ", PASSWORD).status_code in (400, 401)
    assert client.get("/account").status_code == 302


@pytest.mark.parametrize("username", ["ali\x00ce", "alice\n", "\x1b[31malice", "al\u202eice"])
def test_control_characters_in_a_username_are_just_a_failed_login(client, alice, login, username):
    response = login(username, PASSWORD)
    assert response.status_code == 401
    assert "Invalid username or password." in response.text


@pytest.mark.parametrize(
    "data, message",
    [
        ({"username": "", "password": "x"}, "Enter your username."),
        ({"username": "alice", "password": ""}, "Enter your password."),
        ({"username": "a" * 201, "password": "x"}, "Field cannot be longer than 200"),
    ],
)
def test_an_incomplete_form_is_a_400_with_the_reason(client, data, message):
    token = csrf_token(client.get("/login").text)
    response = client.post("/login", data={**data, "csrf_token": token})
    assert response.status_code == 400
    assert message in response.text


def test_logout_by_get(client, alice, login):
    login("alice", PASSWORD)
    response = client.get("/logout")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert "You have been logged out." in client.get("/login").text
    assert client.get("/account").status_code == 302


def test_logout_by_post_with_the_pages_token(client, alice, login):
    login("alice", PASSWORD)
    account = client.get("/account").text
    token = csrf_token(
        account.replace('type="hidden" name="csrf_token"', 'name="csrf_token" type="hidden"')
    )
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/account").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client, alice, login):
    response = login("alice", PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_when_configured(app, client, alice, login):
    app.config["SESSION_COOKIE_SECURE"] = True
    response = login("alice", PASSWORD, wsgi_url_scheme="https")
    cookie = response.headers["Set-Cookie"]
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_lasts_the_configured_lifetime(app, client, alice, login):
    app.config["PERMANENT_SESSION_LIFETIME"] = 3600
    cookie = login("alice", PASSWORD).headers["Set-Cookie"]
    assert "Expires=" in cookie  # a lasting login, not a browser-session cookie


def test_a_removed_user_is_told_the_session_expired(app, client, alice, login):
    login("alice", PASSWORD)
    with app.app_context():
        accounts.delete_user("alice")
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/account")
    assert "Your session has expired. Please log in again." in client.get("/login").text


def test_an_expired_session_says_so(app, client, alice, login, monkeypatch):
    app.config["PERMANENT_SESSION_LIFETIME"] = 60
    login("alice", PASSWORD)
    assert client.get("/account").status_code == 200
    import time

    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.get("/account")
    assert response.status_code == 302
    assert "Your session has expired. Please log in again." in client.get("/login").text


def test_bearer_token_opens_protected_pages(app, client, alice):
    with app.app_context():
        token = accounts.create_token("alice")
    page = client.get("/account", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200
    assert ">alice<" in page.text
    bad = client.get("/account", headers={"Authorization": "Bearer cmb_wrong"})
    assert bad.status_code == 302


@pytest.fixture
def api_app(app: Flask) -> Flask:
    """The app with a protected route under /api, as the reporting API has."""

    @app.get("/api/private/_login_test")
    @login_required
    def protected() -> dict:
        return {"ok": True}

    return app


def test_api_paths_answer_401_json_instead_of_a_redirect(api_app, client, alice, login):
    response = client.get("/api/private/_login_test")
    assert response.status_code == 401
    assert response.is_json
    assert "error" in response.get_json()
    login("alice", PASSWORD)
    assert client.get("/api/private/_login_test").get_json() == {"ok": True}


def test_api_paths_accept_a_bearer_token(api_app, client, alice):
    with api_app.app_context():
        token = accounts.create_token("alice")
    ok = client.get("/api/private/_login_test", headers={"Authorization": f"Bearer {token}"})
    assert ok.get_json() == {"ok": True}


def test_logins_are_logged(client, alice, login, caplog):
    with caplog.at_level(logging.INFO):
        login("alice", "nope")
        login("alice", PASSWORD)
    text = caplog.text
    assert "failed login for 'alice'" in text
    assert "user 'alice' logged in" in text
    assert PASSWORD not in text and "nope" not in text


def test_the_private_api_opens_after_logging_in_through_the_form(client, alice, login):
    before = client.get("/api/private")
    assert before.status_code == 401
    assert before.is_json and "error" in before.get_json()
    login("alice", PASSWORD)
    after = client.get("/api/private")
    assert after.status_code == 200
    assert after.get_json()["queries"]
    client.get("/logout")
    assert client.get("/api/private").status_code == 401


def test_a_forged_session_cookie_is_just_a_visitor(client, alice):
    client.set_cookie(
        "session", ".eJyrVopPy0kszkgtVrKKrlYqLU4tykvMTVWyUkpMyc3MU6oFAE0cB2s.forged.sig"
    )
    response = client.get("/account")
    assert response.status_code == 302
    assert "Please log in to see that page." in client.get("/login").text
