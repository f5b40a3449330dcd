"""A person logs in through the real form in Chromium, is sent on, and logs out."""

from __future__ import annotations

import pytest

from crumby import accounts
from tests.browser.conftest import screenshot

PASSWORD = "browser-password-1"


@pytest.mark.one_database
def test_login_through_the_form_follows_next_and_logs_out(app, live_server, page):
    with app.app_context():
        accounts.add_user("carol", PASSWORD)

    # a protected page sends the browser to the login form, remembering where it was going
    page.goto(live_server.url + "/account")
    assert page.url == live_server.url + "/login?next=/account"
    assert "Please log in to see that page." in page.inner_text("main")

    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert "Invalid username or password." in page.inner_text("main")

    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == live_server.url + "/account"
    assert "Logged in as carol" in page.inner_text("main")
    screenshot(page, "login-account")

    cookie = next(c for c in page.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    # script on the page cannot read the session
    assert "session=" not in page.evaluate("document.cookie")

    with page.expect_navigation():
        page.click("text=Log out")
    assert page.url == live_server.url + "/login"
    assert "You have been logged out." in page.inner_text("main")
    page.goto(live_server.url + "/account")
    assert page.url.startswith(live_server.url + "/login")
    # the strict Content-Security-Policy blocked nothing on these pages; the one console
    # error is Chromium reporting the wrong password's 401 answer
    assert page.js_errors == [
        "Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"
    ]


def test_a_hostile_next_stays_on_crumby(app, live_server, page):
    with app.app_context():
        accounts.add_user("dave", PASSWORD)
    page.goto(live_server.url + "/login?next=/%09/evil.example")
    page.fill("input[name=username]", "dave")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == live_server.url + "/"
