"""The main chart's buckets, its previous period and running bucket, the headline's points,
and the live "Right now", in headless Chromium on the real API (issue 11)."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from crumby import clock
from crumby.extensions import db
from crumby.sites import add_site
from tests.browser.conftest import ARTIFACTS, LiveServer, screenshot
from tests.browser.test_dashboard import (  # noqa: F401 (fixtures)
    CSP,
    NOW,
    TODAY,
    api,
    open_dashboard,
    served,
    traffic,
    wait_until,
)
from tests.browser.test_tracker import DESKTOP_CHROME, page_html

pytestmark = pytest.mark.browser

MAIN = "#report-public-visits"


@pytest.fixture
def server(served, traffic):  # noqa: F811  (the dashboard tests' fixtures)
    """Crumby with 90 days of the demo's traffic up to NOW."""
    return served


def card_shot(page, selector: str, name: str) -> None:
    """A screenshot of one card, next to the whole page's, for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(selector).screenshot(path=str(ARTIFACTS / f"{name}.png"))


def chart_state(page) -> dict:
    chart = page.locator(f"{MAIN} .chart")
    return {
        "buckets": chart.get_attribute("data-buckets"),
        "partial": chart.get_attribute("data-partial"),
        "previous": chart.get_attribute("data-previous"),
        "legend": page.locator(f"{MAIN} .u-legend .u-series .u-label").all_inner_texts(),
        "pressed": page.locator(f'{MAIN} .chart-controls button[aria-pressed="true"]').inner_text(),
    }


def test_the_main_chart_shows_the_previous_period_and_today_as_unfinished(server, page):
    open_dashboard(page, server.url + "/?days=30")
    state = chart_state(page)
    assert state["buckets"] == "day" and state["pressed"] == "Days"
    assert state["previous"] == "Previous 30 days"
    assert "Visitors · Previous 30 days" in state["legend"]
    assert "Views · Previous 30 days" in state["legend"]
    # today (pinned: NOW's date) is still running: drawn apart, named in the legend
    assert state["partial"] == TODAY.isoformat()
    assert "Visitors, today so far" in state["legend"]
    # the dashed lines are the API's previous period, the 30 days before
    answer = api(page, server, "/api/public/visits?days=30&compare=previous")
    assert answer["previous"]["t1"] == (TODAY - dt.timedelta(days=30)).isoformat()
    assert sum(r[2] for r in answer["previous"]["data"]) > 0
    # weeks are offered for 30 days, months are not
    buttons = page.locator(f"{MAIN} .chart-controls button").all_inner_texts()
    assert buttons == ["Days", "Weeks"]
    screenshot(page, "explore-main-chart-30-days")
    card_shot(page, MAIN, "explore-card-30-days")
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(300)  # the charts redraw in the dark scheme's colours
    card_shot(page, MAIN, "explore-card-30-days-dark")
    assert page.js_errors == []


def test_today_is_charted_per_local_hour_with_the_running_hour_dotted(server, page):
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if "/api/public/visits" in r.url else None)
    open_dashboard(page, server.url + "/?days=1")
    # the page preloads exactly the hourly series dashboard.js then reads: one request
    assert len(fetched) == 1 and fetched[0].endswith("&interval=hour"), fetched
    state = chart_state(page)
    assert state["buckets"] == "hour" and state["pressed"] == "Hours"
    assert state["previous"] == "Previous day"
    # NOW is 21:30 UTC (the demo site's zone): the 21:00 hour runs, 22:00 and 23:00 are to come
    assert state["partial"] == f"{TODAY}T21:00:00Z"
    assert "Visitors, this hour so far" in state["legend"]
    assert page.locator(f"{MAIN} summary").inner_text() == "Table (24 rows)"
    screenshot(page, "explore-main-chart-today-hourly")
    card_shot(page, MAIN, "explore-card-today-hourly")
    assert page.js_errors == []


@pytest.mark.one_database
def test_long_ranges_offer_weeks_and_months_kept_in_the_url(server, page):
    open_dashboard(page, server.url + "/?days=365")
    page.evaluate("window.__same_page = true")
    assert page.locator(f"{MAIN} .chart-controls button").all_inner_texts() == [
        "Days",
        "Weeks",
        "Months",
    ]
    months = page.locator(f'{MAIN} .chart-controls button[data-interval="month"]')
    months.focus()
    page.keyboard.press("Enter")  # the keyboard reaches and works the buckets
    wait_until(page, f"document.querySelector('{MAIN} .chart').dataset.buckets === 'month'")
    assert "interval=month" in page.url
    assert page.evaluate("window.__same_page") is True
    state = chart_state(page)
    assert state["pressed"] == "Months"
    assert state["partial"] == TODAY.replace(day=1).isoformat()
    assert "Visitors, this month so far" in state["legend"]
    assert page.locator(f"{MAIN} summary").inner_text() == "Table (13 rows)"
    screenshot(page, "explore-main-chart-months")
    card_shot(page, MAIN, "explore-card-months")
    page.go_back()
    wait_until(page, f"document.querySelector('{MAIN} .chart').dataset.buckets === 'day'")
    assert page.js_errors == []


def test_the_headline_tells_rate_changes_in_points(server, page):
    open_dashboard(page, server.url + "/?days=7")
    summary = api(page, server, "/api/public/summary?days=7&compare=previous")
    bounce = summary["changes"]["bounce_rate"]
    assert bounce["unit"] == "pp"
    text = page.locator('#headline .kpi[data-metric="bounce_rate"] .kpi-change').inner_text()
    if bounce["change"]:
        sign = "+" if bounce["change"] > 0 else "−"
        assert text.endswith(f"{sign}{abs(bounce['change'])} pp vs. previous period"), text
    else:
        assert text == "±0 pp vs. previous period"
    views = page.locator('#headline .kpi[data-metric="views"] .kpi-change').inner_text()
    assert re.search(r"(%|new) vs\. previous period$", views) and " pp" not in views
    screenshot(page, "explore-headline")
    card_shot(page, "#headline", "explore-card-headline")
    assert page.js_errors == []


@pytest.fixture
def tracked(app, other_origin):
    """Crumby (clock pinned) and a site on another origin that embeds cmb.js; no visits yet."""

    @app.after_request
    def strict_csp(response):
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    clock.pin(app, NOW)
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, "127.0.0.1", public=True)
    with LiveServer(app) as crumby:
        site = other_origin({"/pricing": page_html(crumby.url, "Pricing")})
        yield crumby, site


def right_now(page) -> str:
    return page.locator("#report-public-realtime .kpi-number").first.text_content()


def test_right_now_counts_a_visit_from_another_tab_within_ten_seconds(tracked, browser, page):
    crumby, site = tracked
    open_dashboard(page, crumby.url + "/")
    page.evaluate("window.__same_page = true")
    assert right_now(page) == "0"
    visitor = browser.new_context(user_agent=DESKTOP_CHROME).new_page()
    visitor.goto(site.url + "/pricing")
    sent = time.monotonic()
    wait_until(
        page,
        "document.querySelector('#report-public-realtime .kpi-number').textContent === '1'",
        timeout=10,
    )
    assert time.monotonic() - sent < 10
    assert page.evaluate("window.__same_page") is True  # no reload: the card refreshed itself
    # and the page being viewed now is listed
    wait_until(
        page,
        "!!document.querySelector('#report-public-current_pages table.data td button')",
        timeout=10,
    )
    pages = page.locator("#report-public-current_pages table.data tbody tr").all_inner_texts()
    assert any(row.startswith("/pricing") for row in pages), pages
    screenshot(page, "explore-right-now-live")
    card_shot(page, "#report-public-realtime", "explore-card-right-now")
    visitor.context.close()
    assert page.js_errors == []


@pytest.mark.one_database
def test_a_hidden_page_does_not_poll(tracked, page):
    crumby, _site = tracked
    open_dashboard(page, crumby.url + "/")
    polls = []
    page.on("request", lambda r: polls.append(r.url) if "/api/public/realtime" in r.url else None)
    seen = (
        "Object.defineProperty(document, 'visibilityState', {get: () => '%s', configurable: true})"
    )
    page.evaluate(seen % "hidden")
    page.wait_for_timeout(7000)
    assert polls == []
    page.evaluate(seen % "visible" + "; document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_timeout(1000)
    assert polls  # visible again: at once


def test_the_visits_report_page_has_the_buckets_and_downloads_them(server, page):
    page.goto(server.url + "/reports/public/visits?days=365&interval=week")
    page.wait_for_selector("#report-page[data-ready]", timeout=30_000)
    chart = page.locator("#report .chart")
    assert chart.get_attribute("data-buckets") == "week"
    pressed = page.locator('#report .chart-controls button[aria-pressed="true"]')
    assert pressed.inner_text() == "Weeks"
    assert "interval=week" in page.locator("#csv-link").get_attribute("href")
    assert page.js_errors == []
