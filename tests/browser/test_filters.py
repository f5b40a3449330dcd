"""Filters in headless Chromium: a click on a country row narrows every card and the URL,
shows a chip that removes it, and the back button undoes and redoes it."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import (  # noqa: F401  (fixtures)
    api,
    headline,
    log_in,
    range_query,
    served,
    traffic,
    wait_until,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def server(served, traffic):  # noqa: F811  (test_dashboard's fixtures)
    """The dashboard's test app on loopback, with 90 days of the demo's traffic."""
    return served


def enc(value: str) -> str:
    """As encodeURIComponent encodes a value."""
    return quote(value, safe="!*'()")


def url_filters(page) -> dict[str, list[str]]:
    query = parse_qs(urlsplit(page.url).query)
    return {k: v for k, v in query.items() if k not in ("site", "days", "from", "to")}


def cards(page) -> list[str]:
    """Each card's section id."""
    return [s.get_attribute("id") for s in page.locator("#reports .report").all()]


def wait_for_state(page, suffix: str) -> None:
    """Every card and the page show the range with exactly these filters (``""``: none)."""
    wait_until(
        page,
        "(() => { var d = document.getElementById('dashboard').getAttribute('data-ready') || '';"
        f" var want = {suffix!r};"
        " var ok = want ? d.endsWith('?' + want) : d.indexOf('?') < 0;"
        " return ok && Array.prototype.every.call(document.querySelectorAll('#reports .report'),"
        " function (s) { var l = s.getAttribute('data-loaded') || '';"
        " return want ? l.endsWith('?' + want) : (l && l.indexOf('?') < 0); }); })()",
    )


def table_rows(page, section: str) -> list[list[str]]:
    rows = page.locator(f"#{section} table.data tbody tr").all()
    return [[c.inner_text().replace("↗", "").strip() for c in r.locator("td").all()] for r in rows]


def test_a_country_click_filters_every_card_and_back_undoes_it(server, page):
    log_in(page, server)
    rng = range_query(30)
    page.goto(f"{server.url}/?{rng}")
    wait_for_state(page, "")
    assert page.locator("#filters").is_hidden()
    before = headline(page)
    documents_before = table_rows(page, "report-public-documents")

    # the map card lists its countries too; a row names the country, its code in the tooltip
    page.locator("#report-public-locations .map-toggle button[data-view=list]").click()
    country_row = page.locator("#report-public-locations table.data tbody tr").first
    country = country_row.locator(".bar-label").get_attribute("title")
    assert len(country) == 2 and country_row.locator("td").first.inner_text().strip() != country
    country_row.locator("button.row-filter").click()

    # the URL keeps the filter, every card reloads with it, the chip says so
    wait_for_state(page, f"country={country}")
    assert url_filters(page) == {"country": [country]}
    chip = page.locator("#filter-chips .chip[data-filter=country]")
    assert chip.locator(".chip-name").inner_text() == "Country"
    assert chip.locator(".chip-value").inner_text() == country
    assert page.locator("#filters").is_visible()
    screenshot(page, "filters-country")

    # the cards now show that country's numbers, as the API answers them
    filtered = api(page, server, f"/api/public/summary?{rng}&country={country}")
    assert filtered["filters"] == {"country": country}
    row = dict(zip(filtered["columns"], filtered["data"][0], strict=True))
    now = headline(page)
    assert now["visitors"].replace(",", "") == str(row["visitors"])
    assert now != before
    codes = page.locator("#report-public-locations table.data tbody tr .bar-label")
    assert codes.evaluate_all("spans => spans.map(s => s.title)") == [country]
    documents = api(page, server, f"/api/public/documents?{rng}&country={country}")["data"]
    shown = table_rows(page, "report-public-documents")
    assert [r[0] for r in shown] == [d[0] for d in documents[: len(shown)]]
    assert shown != documents_before
    # every card asked for the filter (the state check above) and the full-report links keep it
    for link in page.locator(".report-page-link").all():
        assert f"country={country}" in link.get_attribute("href")

    # removing the chip removes the filter
    chip.locator("button.chip-remove").click()
    wait_for_state(page, "")
    assert url_filters(page) == {}
    assert page.locator("#filters").is_hidden()
    assert headline(page) == before

    # back: the filter is there again; back once more: the page as it was first
    page.go_back()
    wait_for_state(page, f"country={country}")
    assert url_filters(page) == {"country": [country]}
    assert page.locator("#filter-chips .chip").count() == 1
    assert headline(page) == now
    page.go_back()
    wait_for_state(page, "")
    assert page.locator("#filter-chips .chip").count() == 0
    assert headline(page) == before
    assert page.js_errors == []


def test_pages_filter_when_clicked_and_keep_a_small_link_to_the_page(server, page):
    log_in(page, server)
    rng = range_query(30)
    page.goto(f"{server.url}/?{rng}")
    wait_for_state(page, "")
    first = page.locator("#report-public-documents table.data tbody tr").first
    path = first.locator("button.row-filter").inner_text()
    link = first.locator("a.external")
    assert link.get_attribute("href") == f"https://example.com{path}"
    assert link.get_attribute("target") == "_blank"
    # the entry pages' rows filter by entry page, the sources' by source: two chips, AND
    page.locator("#report-public-entry_pages table.data tbody tr button.row-filter").first.click()
    entry = url_filters(page)["entry_page"][0]
    wait_for_state(page, f"entry_page={enc(entry)}")
    source_row = page.locator("#report-private-referrers table.data tbody tr").first
    source = source_row.locator("button.row-filter").inner_text()
    source_row.click()
    wait_until(page, "document.querySelectorAll('#filter-chips .chip').length === 2")
    assert url_filters(page) == {"entry_page": [entry], "source": [source]}
    wait_for_state(page, f"entry_page={enc(entry)}&source={enc(source)}")
    assert page.js_errors == []
