"""A goal and a funnel made in the page, then hits sent by cmb.js: the cards count them right."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from crumby import accounts
from crumby.extensions import db
from crumby.models import Event, Visit
from crumby.sites import add_site
from tests.browser.test_dashboard import log_in, wait_until
from tests.browser.test_tracker import DESKTOP_CHROME, page_html, settle, wait_for_rows

pytestmark = pytest.mark.browser

BUTTON = "<button id='signup' onclick=\"cmb.event('signup')\">Sign up</button>"


@pytest.fixture
def shop(app, live_server, other_origin: Callable) -> str:
    """A tracked site on its own origin (host 127.0.0.1), and an owner who may log in."""
    with app.app_context():
        with db.engine.begin() as connection:
            add_site(connection, "127.0.0.1")
        accounts.add_user("owner", "correct horse battery")
    pages = {
        "/": page_html(
            live_server.url, "Home", BUTTON + "<a id='pricing' href='/pricing'>Prices</a>"
        ),
        "/pricing": page_html(live_server.url, "Pricing", BUTTON),
    }
    return other_origin(pages).url


def _visitor(browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, user_agent=DESKTOP_CHROME
    )
    return context, context.new_page()


def _cells(page, card: str) -> list[list[str]]:
    rows = page.locator(f"#report-private-{card} table.data tbody tr").all()
    return [[c.inner_text() for c in row.locator("td").all()] for row in rows]


def test_a_goal_and_a_funnel_made_in_the_page_count_the_hits_cmb_js_sends(
    app, live_server, shop, browser, page
):
    crumby = live_server.url
    page.goto(crumby + "/login?next=/sites/127.0.0.1/goals")
    page.fill("#username", "owner")
    page.fill("#password", "correct horse battery")
    page.click("form button[type=submit]")
    page.wait_for_url(crumby + "/sites/127.0.0.1/goals")
    for name, kind, target in (("Pricing", "page", "/pricing"), ("Signup", "event", "signup")):
        page.fill("#goal-form #name", name)
        page.select_option("#goal-form #kind", kind)
        page.fill("#goal-form #target", target)
        page.click("#goal-form button[type=submit]")
        page.wait_for_selector(f'#goal-list tr[data-goal="{name}"]')
    page.fill("#funnel-form #name", "checkout")
    page.select_option("#funnel-form #step_1", "Pricing")
    page.select_option("#funnel-form #step_2", "Signup")
    page.click("#funnel-form button[type=submit]")
    page.wait_for_selector('#funnel-list tr[data-funnel="checkout"]')

    # three visitors: home, pricing, sign up (the funnel); pricing only; sign up, then pricing
    for steps in (
        ["/", "click:#pricing", "click:#signup"],
        ["/pricing"],
        ["/", "click:#signup", "/pricing"],
    ):
        context, visitor = _visitor(browser)
        for step in steps:
            if step.startswith("click:"):
                visitor.click(step[6:])
            else:
                visitor.goto(shop + step)
            settle(visitor)
            visitor.wait_for_timeout(1100)  # each step in its own second, even on MySQL
        context.close()
    assert len(wait_for_rows(app, Visit, 5)) == 5
    assert len(wait_for_rows(app, Event, 2)) == 2

    page.goto(crumby + "/?site=127.0.0.1")
    page.wait_for_selector("#dashboard[data-ready]", timeout=30_000)
    assert _cells(page, "goals") == [["Pricing", "3", "3", "100%"], ["Signup", "2", "2", "66.7%"]]
    assert _cells(page, "funnel") == [
        ["1", "Pricing", "3", "100%", "0"],
        ["2", "Signup", "1", "33.3%", "2"],
    ]
    steps = page.locator("#report-private-funnel svg.funnel-chart g[data-step]")
    assert steps.count() == 2
    second = steps.nth(1).text_content()
    assert "2. Signup" in second and "33.3%" in second and "−2 since step 1" in second
    assert page.locator("#report-private-funnel select.param-choice").input_value() == "checkout"
    wait_until(page, "!!document.querySelector('#report-private-goals table.barlist')")
    assert page.js_errors == []


@pytest.mark.one_database
def test_without_a_funnel_its_card_says_how_to_add_one_once(app, live_server, shop, page):
    crumby = live_server.url
    log_in(page, live_server)
    page.goto(crumby + "/?site=127.0.0.1")
    card = page.locator("#report-private-funnel")
    wait_until(page, "!!document.querySelector('#report-private-funnel[data-loaded]')")
    text = card.inner_text()
    assert text.count("Nothing to show yet") == 1, text
    assert card.locator(".idle-note a").get_attribute("href").endswith("/sites/127.0.0.1/goals")
    assert card.locator(".chart svg").count() == 1  # a chart element all the same
    assert page.js_errors == []
