"""The index page renders in a real browser without script errors."""

from __future__ import annotations

from tests.browser.conftest import screenshot


def test_index_page_renders_in_chromium(live_server, page):
    response = page.goto(live_server.url + "/")
    assert response.status == 200
    assert "Crumby" in page.title()
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator(".brand").inner_text() == "Crumby"
    assert screenshot(page, "index").stat().st_size > 1000
    assert page.js_errors == []
