"""An owner's account and sharing in Chromium: password, API token, share link, embed card.

The owner logs in, changes their password, makes an API token (shown once)
and revokes it; on the site's settings page they verify the installation
before and after the first hit, and make a share link, which a visitor
without a login opens; another site's page frames the public site's card.
Screenshots at 1366 and 390 px, light and dark, go to test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from crumby import accounts, clock
from crumby.extensions import db
from crumby.sites import add_site
from tests.browser.conftest import ARTIFACTS, LiveServer, contrast_ratios, screenshot
from tests.browser.test_dashboard import wait_until
from tests.browser.test_onboarding import wait_for_visits
from tests.browser.test_tracker import DESKTOP_CHROME

pytestmark = pytest.mark.browser

NOW = dt.datetime(2026, 3, 4, 14, 0)
PASSWORD = "correct horse battery"


@pytest.fixture
def served(app):
    clock.pin(app, NOW)
    with app.app_context():
        with db.engine.begin() as connection:
            add_site(connection, "secret.example", "Europe/Berlin", public=False)
            add_site(connection, "open.example", "UTC", public=True)
        accounts.add_user("owner", PASSWORD)
    with LiveServer(app) as server:
        yield server


def log_in(page, server, password: str = PASSWORD, then: str = "/account") -> None:
    page.goto(f"{server.url}/login?next={then}")
    page.fill("#username", "owner")
    page.fill("#password", password)
    page.click("form button[type=submit]")
    page.wait_for_url(server.url + then)


def no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def shots(page, name: str, dashboard: bool = False) -> None:
    """Screenshots of the current page at 1366 and 390 px, light and dark.

    A dashboard is loaded again at each width, as a phone would (its charts are
    drawn for the width they are loaded at).
    """
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            if dashboard:
                page.goto(page.url)
                page.wait_for_selector("#dashboard[data-ready]", timeout=30_000)
            no_sideways_scroll(page)
            screenshot(page, f"{name}-{width}-{scheme}")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.emulate_media(color_scheme="light")


def readable(page, selectors: list[str]) -> None:
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        ratios = contrast_ratios(page, selectors)
        low = {sel: r for sel, r in ratios.items() if r < 4.5}  # WCAG AA for normal text
        assert low == {}, (scheme, ratios)
    page.emulate_media(color_scheme="light")


def test_the_owner_manages_the_account_and_shares_a_site(served, app, page, browser):
    crumby = served.url
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, served)

    # the password: changed with the current one; the new one logs in
    page.fill("#current", PASSWORD)
    page.fill("#new", "a much longer secret")
    page.fill("#confirm", "a much longer secret")
    page.click("#password-form button[type=submit]")
    page.wait_for_selector(".auth-message")
    assert "password has been changed" in page.locator(".auth-message").inner_text()
    page.goto(crumby + "/logout")
    log_in(page, served, "a much longer secret")

    # an API token, by keyboard: focus the site choice, tab to the button, press Enter
    page.focus("#token-form #site")
    page.keyboard.press("Tab")  # the ingest-only box
    page.keyboard.press("Tab")  # the button
    assert page.evaluate("document.activeElement.textContent.trim()") == "Make a token"
    page.keyboard.press("Enter")
    page.wait_for_selector("#new-token code")
    token = page.locator("#new-token code").inner_text().strip()
    assert re.fullmatch(r"cmb_[A-Za-z0-9_-]{43}", token)
    assert page.locator("#token-list tbody tr").count() == 1
    readable(
        page, ["h1", "h2", ".auth-form label", "#token-list td", "#new-token strong", ".muted"]
    )
    shots(page, "account-new-token")
    answer = page.request.get(crumby + "/api/private", headers={"Authorization": f"Bearer {token}"})
    assert answer.ok
    page.goto(crumby + "/account")  # shown once: never again
    assert page.locator("#new-token").count() == 0 and token not in page.content()
    page.click("#token-list button")
    page.wait_for_selector("#no-tokens")
    fresh = browser.new_context()
    answer = fresh.request.get(
        crumby + "/api/private", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status == 401
    fresh.close()

    # the site's settings: verify (nothing yet), then a hit arrives, verify again
    page.goto(crumby + "/sites/secret.example")
    page.focus("form.site-form button[type=submit]")  # Save; the next stop is the check
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "verify-button"
    page.keyboard.press("Enter")
    wait_until(page, "document.getElementById('verify-result').textContent.includes('No hit')")
    assert "missing" in page.locator("#verify-result").get_attribute("class")
    hit = page.request.post(
        crumby + "/visit",
        data='{"dl": "https://secret.example/", "cid": "v1"}',
        headers={"Content-Type": "application/json", "User-Agent": DESKTOP_CHROME},
    )
    assert hit.status == 204
    assert len(wait_for_visits(app, 1)) == 1  # stored (the writer batches hits)
    page.click("#verify-button")
    wait_until(page, "document.getElementById('verify-result').textContent.includes('It works')")
    assert page.url == crumby + "/sites/secret.example"  # checked without leaving the page

    # a share link, made here and opened by someone without a login
    page.fill("#share-form #label", "For the board")
    page.click("#share-form button[type=submit]")
    page.wait_for_selector("#share-list .share-url")
    link = page.locator("#share-list .share-url").inner_text()
    assert link.startswith(crumby + "/share/")
    readable(page, ["h1", "h2", "#share-list td", ".share-url", ".muted", "#verify-result"])
    shots(page, "site-settings")
    assert page.js_errors == []

    visitor_context = browser.new_context(viewport={"width": 1366, "height": 900})
    visitor = visitor_context.new_page()
    errors: list[str] = []
    visitor.on("pageerror", lambda exc: errors.append(str(exc)))
    visitor.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    visitor.goto(link)
    visitor.wait_for_selector("#dashboard[data-ready]", timeout=30_000)
    assert visitor.locator('meta[name="robots"]').get_attribute("content") == "noindex, nofollow"
    private_cards = visitor.locator('#reports .report[data-scope="private"]')
    assert private_cards.count() >= 1
    wait_until(visitor, "!document.querySelector('#status.error')")
    visitor.click('#range-picker a[data-days="7"]')  # the range picker keeps the link
    wait_until(visitor, "location.search.includes('days=7')")
    assert visitor.url.startswith(link)
    visitor.wait_for_selector("#dashboard[data-ready]")
    assert errors == []
    shots(visitor, "shared-dashboard", dashboard=True)
    visitor.goto(visitor.url)
    visitor.wait_for_selector("#dashboard[data-ready]", timeout=30_000)
    wait_until(visitor, "document.getElementById('status').textContent === ''")
    visitor.screenshot(path=str(ARTIFACTS / "shared-dashboard-top.png"))  # the first screen

    # revoked: the same link is gone
    page.click("#share-list button")
    page.wait_for_selector("#no-shares")
    assert visitor.goto(link).status == 404
    visitor_context.close()


def test_another_sites_page_frames_the_public_card_but_not_the_dashboard(
    served, app, page, other_origin
):
    crumby = served.url
    for cid in ("a", "b"):
        page.request.post(
            crumby + "/visit",
            data=f'{{"dl": "https://open.example/", "cid": "{cid}"}}',
            headers={"Content-Type": "application/json", "User-Agent": DESKTOP_CHROME},
        )
    assert len(wait_for_visits(app, 2)) == 2  # stored (the writer batches hits)
    blog = other_origin(
        {
            "/": (
                "<!doctype html><title>Blog</title><h1>My blog</h1>"
                f'<iframe id="card" src="{crumby}/embed/open.example" width="320" height="180">'
                "</iframe>"
                f'<iframe id="dash" src="{crumby}/?site=open.example" width="320" height="180">'
                "</iframe>"
            )
        }
    )
    page.goto(blog.url + "/")
    card = page.frame_locator("#card")
    assert card.locator("#embed-visitors").inner_text() == "2"
    assert card.locator("h1").inner_text() == "open.example"
    [frame] = [f for f in page.frames if f.url.endswith("/embed/open.example")]
    assert frame.evaluate("document.documentElement.scrollHeight") <= 180  # the code's height
    # the dashboard itself refuses to be framed: its frame stays without Crumby's page
    page.wait_for_timeout(500)
    dash = [f for f in page.frames if f.url.startswith(crumby + "/?site")]
    assert not dash or dash[0].locator("#dashboard").count() == 0
    screenshot(page, "embed-card-on-another-site")
