"""A new owner's first minutes in Chromium: no site, then a site, then its first visit.

A fresh install shows the welcome page with the exact line to paste; after
``crumby addsite`` the dashboard waits for the first visit and shows the line
with the site's name; a page carrying that very line sends a hit, and the
dashboard shows it. With two sites, / lists them and the site bar switches
between them. Screenshots of each page go to test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest
import sqlalchemy as sa

from crumby import accounts, clock, ingest
from crumby.extensions import db
from crumby.models import Visit
from crumby.sites import add_site
from tests.browser.conftest import LiveServer, screenshot
from tests.browser.test_tracker import DESKTOP_CHROME

pytestmark = pytest.mark.browser

#: "now" for the app under test: hits and "today" follow it, not the wall clock
NOW = dt.datetime(2026, 3, 4, 14, 0)


@pytest.fixture
def served(app):
    clock.pin(app, NOW)
    with LiveServer(app) as server:
        # the DOMAIN setting says where Crumby is reachable: the snippet's script source
        app.config["DOMAIN"] = f"127.0.0.1:{server.port}"
        yield server


def wait_for_visits(app, n: int, timeout: float = 10.0) -> list[Visit]:
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            rows = db.session.scalars(sa.select(Visit).order_by(Visit.id)).all()
            db.session.expunge_all()
            db.session.remove()
        if len(rows) >= n or time.monotonic() > deadline:
            return list(rows)
        time.sleep(0.1)


def kpi(page, metric: str) -> str:
    return page.locator(f'#headline .kpi[data-metric="{metric}"] .kpi-value').inner_text()


def test_welcome_then_waiting_then_the_first_visit(
    app, served, page, browser, other_origin, crumby_script, cli_env
):
    # a fresh install: no site, so the welcome page with the line to paste
    response = page.goto(served.url + "/")
    assert response.status == 200
    assert page.locator("#welcome h1").inner_text() == "Welcome to Crumby"
    assert page.locator("#dashboard").count() == 0
    snippets = page.locator("#welcome pre.snippet code").all_inner_texts()
    assert snippets == [
        "crumby addsite example.org --timezone Europe/Berlin",
        f'<script src="http://127.0.0.1:{served.port}/cmb.js" defer></script>',
    ]
    screenshot(page, "onboarding-welcome")

    # the owner registers the site with the real command line
    added = subprocess.run(
        [crumby_script, "addsite", "tea.example", "--timezone", "Europe/Berlin", "--public"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    page.goto(served.url + "/")
    page.wait_for_selector("#dashboard[data-ready]", timeout=30_000)
    assert page.locator("#dashboard").get_attribute("data-site") == "tea.example"
    assert page.locator("#waiting h2").inner_text() == "Waiting for the first visit"
    line = page.locator("#waiting pre.snippet code").inner_text()
    assert line == (
        f'<script src="http://127.0.0.1:{served.port}/cmb.js" data-site="tea.example" defer>'
        "</script>"
    )
    assert kpi(page, "views") == "0"
    screenshot(page, "onboarding-waiting")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    # on a phone the long line scrolls inside its box, not the page sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "onboarding-waiting-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # a page of the site, on its own origin, carries exactly that line; a person opens it
    shop = other_origin(
        {
            "/": f"<!doctype html><html><head><title>Tea shop</title>{line}</head>"
            "<body><h1>Tea shop</h1></body></html>"
        }
    )
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    try:
        visitor = context.new_page()
        visitor.goto(shop.url + "/")
        [visit] = wait_for_visits(app, 1)
    finally:
        context.close()
    assert (visit.doc_uri, visit.doc_title, visit.datetime) == (shop.url + "/", "Tea shop", NOW)

    page.goto(served.url + "/?days=1")
    page.wait_for_selector("#dashboard[data-ready]", timeout=30_000)
    assert page.locator("#waiting").count() == 0
    assert (kpi(page, "visitors"), kpi(page, "views")) == ("1", "1")
    pages = page.locator("#report-public-documents table.data tbody tr").all_inner_texts()
    assert len(pages) == 1 and pages[0].startswith("/")
    title = page.locator("#report-public-documents tbody tr .bar-label").get_attribute("title")
    assert title == "Tea shop"
    screenshot(page, "onboarding-first-visit")
    assert page.js_errors == []


def test_two_sites_are_listed_and_the_site_bar_switches_between_them(app, served, page):
    with app.app_context():
        with db.engine.begin() as conn:
            add_site(conn, "bakery.example", public=True)
            add_site(conn, "tea.example", timezone="Asia/Tokyo", public=True)
        rows = [
            {
                "cid": f"{host[0]}{n % people}",
                "datetime": NOW - dt.timedelta(hours=n * 7),
                "doc_uri": f"https://{host}/{page_name}",
                "doc_title": page_name.title() or "Home",
                "referrer": "https://www.google.com/" if n % 3 == 0 else None,
            }
            for host, people, count in (("bakery.example", 9, 60), ("tea.example", 4, 25))
            for n in range(count)
            for page_name in ("", "menu")[: 1 + n % 2]
        ]
        stored = ingest.store(app, visits=rows)
    assert stored == (len(rows), 0)

    page.goto(served.url + "/")
    table = page.locator("table.sites")
    assert table.locator("tbody tr td:first-child a").all_inner_texts() == [
        "bakery.example",
        "tea.example",
    ]
    # visitors over the last 30 days: every row lies within 18 days of NOW
    assert table.locator("tbody tr td.num").all_inner_texts() == ["9", "4"]
    screenshot(page, "sites-list")

    page.click("table.sites a:text('tea.example')")
    page.wait_for_selector("#dashboard[data-ready]", timeout=30_000)
    assert page.locator(".site-bar h1").inner_text().startswith("tea.example")
    assert "Asia/Tokyo" in page.locator(".site-zone").inner_text()
    assert kpi(page, "visitors") == "4"
    # a report's own page stays on this site
    link = page.locator("#report-public-documents .report-page-link")
    assert "site=tea.example" in link.get_attribute("href")

    # the site bar's switcher opens the other site's dashboard
    page.select_option("#site-switch", "bakery.example")
    page.wait_for_url("**/?site=bakery.example")
    page.wait_for_selector("#dashboard[data-ready]", timeout=30_000)
    assert page.locator("#dashboard").get_attribute("data-site") == "bakery.example"
    assert kpi(page, "visitors") == "9"
    screenshot(page, "site-dashboard")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # site bar included
    screenshot(page, "site-dashboard-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    link.click()
    page.wait_for_selector("#report-page[data-ready]", timeout=30_000)
    assert page.locator("#report-page").get_attribute("data-site") == "bakery.example"

    # a logged-in owner manages both on /sites
    with app.app_context():
        accounts.add_user("owner", "correct horse battery")
    page.goto(served.url + "/login?next=/sites")
    page.fill("#username", "owner")
    page.fill("#password", "correct horse battery")
    page.click("form button[type=submit]")
    page.wait_for_url(served.url + "/sites")
    hosts = page.locator("table.sites tbody td:first-child a").all_inner_texts()
    assert hosts == ["bakery.example", "tea.example"]
    assert page.locator("form.site-form button[type=submit]").inner_text() == "Add site"
    screenshot(page, "sites-admin")
    assert page.js_errors == []
