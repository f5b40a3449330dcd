"""The dashboard in headless Chromium, on the real reporting API and seeded data.

A site owner opens /, sees the headline figures and one chart with its table
per report, changes the range, opens a report on its own page, downloads its
CSV, and never sees a visitor's string run as markup or script.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from urllib.parse import unquote

import pytest
from flask import Flask

from crumby import accounts, clock, demo, ingest
from crumby.extensions import db
from crumby.models import url_path
from crumby.sites import find_site
from tests.browser.conftest import LiveServer, contrast_ratios, screenshot

pytestmark = pytest.mark.browser

#: "now" for the app under test: the traffic, the dashboard's "today" and every default
#: range follow it, so the stories read the same at any hour (CI once failed between
#: 00:00 and 03:00 UTC, when the wall clock's "today" had no traffic yet)
NOW = dt.datetime(2026, 6, 17, 21, 30)  # a Wednesday evening, UTC
TODAY = NOW.date()


#: the Content-Security-Policy agreed in INTERFACES.md (crumby.security sets it once merged)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


@pytest.fixture
def served(app: Flask):
    @app.after_request
    def strict_csp(response):
        # the pages must work under the strict policy: a violation is a console error
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    clock.pin(app, NOW)
    with app.app_context():
        accounts.add_user("owner", "correct horse battery")
        demo.register_site()  # the public example.com, as ``crumby demo`` registers it
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def traffic(app, served):
    """90 days of the demo's synthetic traffic up to NOW, scaled down."""
    with app.app_context():
        return demo.generate(days=90, sessions_per_day=12, seed=7, now=NOW)


def log_in(page, server) -> None:
    """Through the login form, as a site owner does."""
    page.goto(server.url + "/login?next=/")
    page.fill("#username", "owner")
    page.fill("#password", "correct horse battery")
    page.click("form button[type=submit]")
    page.wait_for_url(server.url + "/")


def wait_until(page, expression: str, timeout: float = 30) -> None:
    """Poll a JS expression (page.wait_for_function evaluates strings, which the CSP forbids)."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def open_dashboard(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#dashboard[data-ready]", timeout=30_000)


def api(page, server, path: str) -> dict:
    """The JSON the dashboard reads, fetched with the page's own cookies."""
    response = page.request.get(server.url + path)
    assert response.ok, (path, response.status)
    return response.json()


def headline(page) -> dict[str, str]:
    return {
        item.get_attribute("data-metric"): item.locator(".kpi-value").inner_text()
        for item in page.locator("#headline .kpi").all()
    }


def number(text: str) -> float:
    return float(re.sub(r"[^\d.]", "", text))


def range_query(days: int) -> str:
    return f"from={TODAY - dt.timedelta(days=days - 1)}&to={TODAY}"


def visits_rows(page) -> int:
    return page.locator("#report-public-visits table.data tbody tr").count()


# ---- the stories ------------------------------------------------------------------------


def test_every_report_gets_a_chart_and_a_table_in_metadata_order(served, traffic, page):
    log_in(page, served)
    response = page.goto(served.url + "/")
    assert response.status == 200
    assert "Crumby" in page.title()
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator(".brand").inner_text() == "Crumby"
    page.wait_for_selector("#dashboard[data-ready]", timeout=30_000)

    listed = [("public", q) for q in api(page, served, "/api/public")["queries"]]
    listed += [("private", q) for q in api(page, served, "/api/private")["queries"]]
    listed = [(s, q) for s, q in listed if (s, q["name"]) != ("public", "summary")]
    listed.sort(key=lambda sq: (sq[1]["order"], sq[1]["name"]))
    sections = page.locator("#reports .report")
    shown = [(r.get_attribute("data-scope"), r.get_attribute("data-name")) for r in sections.all()]
    assert shown == [(s, q["name"]) for s, q in listed]
    assert ("private", "events") in shown and ("public", "visits") in shown

    for report in sections.all():
        drawn = report.locator(".chart canvas, .chart svg:not(.chart-skeleton)")
        assert drawn.count() >= 1, report.inner_html()
        assert report.locator(".chart-skeleton").count() == 0
        assert report.locator("table.data tbody tr").count() >= 1
    assert page.locator('#report-public-visits .chart[data-chart="line"] canvas').count() >= 1
    # a ranking is one table whose rows are its bars, as long as each row's number
    browsers = page.locator('#report-public-browsers .chart[data-chart="bar-list"] table.barlist')
    bars = browsers.locator("svg.row-bar rect")
    widths = [float(bars.nth(i).get_attribute("width")) for i in range(bars.count())]
    assert widths[0] == 100 and widths == sorted(widths, reverse=True) and len(widths) >= 3
    shaded = page.locator("#report-public-locations svg.map path[data-value]")
    assert shaded.count() >= 10  # the countries that sent visits, on the bundled outline
    assert page.locator("#report-public-locations svg.map path").count() > 150

    # the headline strip shows the summary query's figures for the range
    summary = api(page, served, "/api/public/summary?" + range_query(30))
    row = dict(zip(summary["columns"], summary["data"][0], strict=True))
    figures = headline(page)
    assert list(figures) == ["visitors", "views", "sessions", "bounce_rate", "avg_duration"]
    assert number(figures["visitors"]) == row["visitors"] > 0
    assert number(figures["views"]) == row["views"]
    assert number(figures["sessions"]) == row["sessions"]
    assert figures["bounce_rate"].endswith("%")
    assert re.fullmatch(r"\d+:\d\d", figures["avg_duration"])
    assert "previous period" in page.locator("#headline .kpi-change").first.inner_text()
    assert page.js_errors == []


def test_a_visitor_who_is_not_logged_in_sees_only_public_reports(served, traffic, page):
    open_dashboard(page, served.url + "/")
    scopes = {r.get_attribute("data-scope") for r in page.locator("#reports .report").all()}
    assert scopes == {"public"}
    assert page.locator("#report-public-visits").count() == 1
    assert page.js_errors == []  # and no 401 from asking for the private list


#: where, across its canvas, the visits chart drew its first series (0 = left edge, 1 = right)
FIRST_SERIES_X = """(() => {
  const canvas = document.querySelector('#report-public-visits .chart canvas');
  const probe = document.createElement('span');
  probe.style.color = getComputedStyle(canvas).getPropertyValue('--series-1').trim();
  document.body.appendChild(probe);
  const [r, g, b] = getComputedStyle(probe).color.match(/\\d+/g).map(Number);
  probe.remove();
  const {width, height} = canvas;
  const px = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let sum = 0, n = 0;
  for (let i = 0; i < px.length; i += 4) {
    const near = Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 60;
    if (near && px[i + 3] > 200) { sum += (i / 4) % width; n++; }
  }
  return n ? sum / n / width : null;
})()"""


def test_a_single_day_is_drawn_inside_its_own_day(served, traffic, page):
    """'Today' in days is one point per series: it stands mid-chart, not at the edge of a
    span of years (by default today is charted per hour: tests/browser/test_explore.py)."""
    open_dashboard(page, served.url + "/?days=1&interval=day")
    today = api(page, served, f"/api/public/visits?from={TODAY}&to={TODAY}")
    assert today["data"][0][today["columns"].index("views")] > 0  # a day with traffic
    assert page.locator("#report-public-visits summary").inner_text() == "Table (1 row)"
    where = page.evaluate(FIRST_SERIES_X)
    assert where is not None and 0.3 < where < 0.7, where
    screenshot(page, "dashboard-today")
    assert page.js_errors == []


def test_changing_the_range_updates_every_report_without_reloading(served, traffic, page):
    open_dashboard(page, served.url + "/?days=7")
    page.evaluate("window.__same_page = true")
    week = headline(page)
    assert visits_rows(page) == 7
    assert page.locator('#range-picker a[data-days="7"]').get_attribute("aria-current") == "true"

    page.click('#range-picker a[data-days="90"]')
    quarter_range = f"{TODAY - dt.timedelta(days=89)}/{TODAY}"
    wait_until(page, f"document.getElementById('dashboard').dataset.ready === '{quarter_range}'")
    assert page.evaluate("window.__same_page") is True  # no reload
    assert page.url.endswith("?days=90")
    quarter = headline(page)
    assert number(quarter["views"]) > number(week["views"])
    assert number(quarter["visitors"]) > number(week["visitors"])
    # a time series keeps its whole table folded away; the others show a top 6
    assert page.locator("#report-public-visits summary").inner_text() == "Table (90 rows)"
    assert page.locator("#report-public-documents table.data tbody tr").count() == 6
    documents = api(page, served, "/api/public/documents?" + range_query(90))["data"]
    more = page.locator("#report-public-documents table.barlist").get_attribute("data-more")
    assert int(more) == len(documents) - 6 > 0
    for report in page.locator("#reports .report").all():
        assert report.get_attribute("data-loaded") == quarter_range

    start = (TODAY - dt.timedelta(days=2)).isoformat()
    page.fill("#range-from", start)
    page.fill("#range-to", TODAY.isoformat())
    page.click("#range-picker button[type=submit]")
    wait_until(
        page,
        f"document.getElementById('dashboard').dataset.ready === '{start}/{TODAY.isoformat()}'",
    )
    assert f"from={start}" in page.url and f"to={TODAY.isoformat()}" in page.url
    assert visits_rows(page) == 3

    page.go_back()
    wait_until(
        page, "document.querySelectorAll('#report-public-visits table.data tbody tr').length === 90"
    )
    assert page.url.endswith("?days=90")
    assert page.evaluate("window.__same_page") is True
    assert page.js_errors == []


@pytest.mark.one_database
def test_a_bookmarked_range_opens_as_it_was_shared(served, traffic, page):
    start, end = TODAY - dt.timedelta(days=13), TODAY - dt.timedelta(days=7)
    open_dashboard(page, f"{served.url}/?from={start}&to={end}")
    assert page.input_value("#range-from") == start.isoformat()
    assert page.input_value("#range-to") == end.isoformat()
    dates = page.locator(
        "#report-public-visits table.data tbody td:first-child"
    ).all_text_contents()
    assert dates[0] == start.isoformat() and dates[-1] == end.isoformat()
    assert page.js_errors == []


@pytest.mark.one_database
def test_an_impossible_range_is_explained_not_crashed(served, traffic, page):
    for bad, words in [
        ("from=2026-02-30&to=2026-03-01", "2026-02-30"),
        ("days=abc", "days must be a whole number"),
        ("days=100000", "days reaches before"),
    ]:
        page.goto(served.url + "/?" + bad)
        page.wait_for_selector("#dashboard[data-ready]", timeout=30_000)
        # said once, at the top; the page shows the last 30 days, every card with data
        assert page.locator(".flash.error, .error-text").all_inner_texts() == [
            page.locator("#range-error").inner_text()
        ]
        assert words in page.locator("#range-error").inner_text()
        assert "days" not in page.url and "from" not in page.url
        assert page.locator("#range-picker a[data-days='30'][aria-current=true]").count() == 1
        assert page.locator("#status.error").count() == 0
        assert page.locator("#report-public-documents table.data tbody tr").count() == 6
    assert page.js_errors == []


def test_a_report_page_has_the_whole_table_a_csv_and_for_owners_the_sql(
    served, traffic, page, tmp_path
):
    page.goto(served.url + "/reports/public/documents?days=90")
    page.wait_for_selector("#report-page[data-ready]", timeout=30_000)
    assert page.locator("h1").inner_text() == "Top pages"
    assert page.locator("#report .chart svg:not(.chart-skeleton)").count() == 1
    assert page.locator("#report .chart-skeleton").count() == 0
    result = api(page, served, "/api/public/documents?" + range_query(90))
    rows = page.locator("#report table.data tbody tr")
    assert rows.count() == len(result["data"]) > 0  # the whole table, not a top 10
    assert page.locator("#sql").count() == 0  # the SQL is for logged-in users only

    with page.expect_download() as download_info:
        page.click("#csv-link")
    download = download_info.value
    path = tmp_path / "documents.csv"
    download.save_as(path)
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert table[0] == result["columns"]
    assert len(table) == len(result["data"]) + 1
    assert "from=" in page.get_attribute("#csv-link", "href")

    log_in(page, served)
    page.goto(served.url + "/reports/private/events?days=30")
    page.wait_for_selector("#report-page[data-ready]", timeout=30_000)
    sql = page.locator("#sql").inner_text()
    assert "FROM events" in sql and "SELECT" in sql
    assert page.locator("#report table.data tbody tr").count() >= 1
    assert page.js_errors == []


def test_private_report_pages_need_a_login(served, page):
    page.goto(served.url + "/reports/private/events?days=7")
    assert page.url.startswith(served.url + "/login?next=")
    assert unquote(page.url.split("next=", 1)[1]) == "/reports/private/events?days=7"
    assert page.locator("#report-page").count() == 0
    page.fill("#username", "owner")
    page.fill("#password", "correct horse battery")
    page.click("form button[type=submit]")
    page.wait_for_selector("#report-page[data-ready]", timeout=30_000)
    assert page.url.endswith("/reports/private/events?days=7")
    assert page.locator("#sql").count() == 1
    assert page.goto(served.url + "/reports/public/no-such-report").status == 404


XSS_VISIT = {
    "doc_title": '<img src=x onerror="window.__xss=1">Title',
    "doc_uri": "javascript:window.__xss=2//<b>uri</b>",
    "referrer": 'https://evil.example/"><script>window.__xss=3</script>',
    "lang": "<b>bold</b>",
}
XSS_EVENT = {
    "name": "<svg onload=window.__xss=4>",
    "value": "<iframe src=javascript:window.__xss=5>",
}


def test_hostile_strings_in_every_tracked_field_stay_text(app, served, page):
    when = NOW - dt.timedelta(minutes=5)
    with app.app_context():
        with db.engine.connect() as conn:
            site = find_site(conn, demo.SITE_HOST)
        # the hostile page URL names no site's host: the row carries its site, as a hit's
        # ``site`` parameter would
        stored = ingest.store(
            app,
            visits=[
                {"site_id": site.id, "cid": "evil", "datetime": when, "country": "DE"} | XSS_VISIT,
                {
                    "cid": "good",
                    "datetime": when,
                    "country": "FR",
                    "doc_uri": "https://www.example.com/",
                    "referrer": "https://example.org/from",
                },
            ],
            events=[
                {"site_id": site.id, "cid": "evil", "datetime": when, "doc_uri": "/"} | XSS_EVENT
            ],
        )
    assert stored == (2, 1)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, served)
    open_dashboard(page, served.url + "/?days=1")
    for url in ("/reports/private/events?days=1", "/reports/public/documents?days=1"):
        page.goto(served.url + url)
        page.wait_for_selector("#report-page[data-ready]", timeout=30_000)
        assert page.locator("#report iframe, #report svg[onload], #report img").count() == 0
    open_dashboard(page, served.url + "/?days=1")
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    reports = page.locator("#reports")
    for tag in ("img", "script", "b", "iframe"):
        assert reports.locator(tag).count() == 0, tag
    assert reports.locator("svg[onload]").count() == 0
    # a page's title is the tooltip of its row (the row shows the path)
    tooltips = reports.locator("[title]").evaluate_all("nodes => nodes.map(n => n.title)")
    body = reports.inner_text() + "\n".join(tooltips)
    # the page reports show a visit's path (the URL without scheme, host and query)
    path = url_path(XSS_VISIT["doc_uri"])
    assert path == "window.__xss=2//<b>uri</b>"  # still markup, if it were run as HTML
    texts = [*(v for k, v in XSS_VISIT.items() if k != "doc_uri"), path, *XSS_EVENT.values()]
    for text in texts:
        assert text in body, text
    # only http(s) URLs became links; the javascript: URL is plain text
    hrefs = reports.locator("table.data a[href]").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert hrefs and all(h.startswith("https://") for h in hrefs)
    assert not any("javascript" in h for h in hrefs)
    assert page.js_errors == []


@pytest.mark.one_database
def test_screenshots_at_desktop_and_phone_width(served, traffic, page):
    log_in(page, served)
    open_dashboard(page, served.url + "/?days=30")
    desktop = screenshot(page, "dashboard-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)  # the charts follow the new width
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    phone = screenshot(page, "dashboard-phone")
    page.emulate_media(color_scheme="dark")
    open_dashboard(page, served.url + "/?days=30")
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert sum(map(int, re.findall(r"\d+", background))) < 120  # dark, not white
    dark = screenshot(page, "dashboard-phone-dark")
    page.goto(served.url + "/reports/public/locations?days=90")
    page.wait_for_selector("#report-page[data-ready]", timeout=30_000)
    report = screenshot(page, "report-phone-dark")
    assert min(p.stat().st_size for p in (desktop, phone, dark, report)) > 10_000
    assert page.js_errors == []


@pytest.mark.one_database
def test_the_range_picker_is_reachable_by_keyboard(served, traffic, page):
    open_dashboard(page, served.url + "/?days=30")
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert "7 days" in reached
    while page.evaluate("document.activeElement.textContent.trim()") != "7 days":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    wait_until(page, "location.search === '?days=7'")
    wait_until(
        page, "document.querySelectorAll('#report-public-visits table.data tbody tr').length === 7"
    )
    assert page.js_errors == []


#: the dashboard's kinds of text, each checked for WCAG AA contrast
CONTRAST_SELECTORS = [
    "h1",
    ".description",
    ".kpi-label",
    ".kpi-value",
    ".report-page-link",
    "table.data td",
    "table.data th",
    ".range-presets a",
    ".range-label",
]


@pytest.mark.one_database
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_has_readable_contrast_in_both_colour_schemes(served, traffic, page, scheme):
    page.emulate_media(color_scheme=scheme)
    open_dashboard(page, served.url + "/")
    ratios = contrast_ratios(page, CONTRAST_SELECTORS)
    assert len(ratios) == 9
    low = {sel: r for sel, r in ratios.items() if r < 4.5}  # WCAG AA for normal text
    assert low == {}, ratios


@pytest.mark.one_database
def test_a_wrong_password_is_refused_with_a_message(served, page):
    page.goto(served.url + "/login")
    page.fill("#username", "owner")
    page.fill("#password", "wrong")
    page.click("form button[type=submit]")
    assert page.locator(".auth-error").count() == 1
    screenshot(page, "login-wrong-password")
    page.js_errors.clear()  # the refused login answers 401 on purpose
    open_dashboard(page, served.url + "/")
    assert page.locator('#reports .report[data-scope="private"]').count() == 0
    assert page.js_errors == []


@pytest.mark.one_database
def test_an_expired_session_says_so_on_the_private_reports(served, traffic, page):
    log_in(page, served)
    open_dashboard(page, served.url + "/?days=7")
    assert page.locator('#reports .report[data-scope="private"]').count() >= 1
    page.context.clear_cookies()  # the session ends while the page stays open
    page.click('#range-picker a[data-days="30"]')
    page.wait_for_selector("#status.error", timeout=30_000)
    assert "session has expired" in page.locator("#status").inner_text()
    link = page.locator("#report-private-events .chart a")
    assert link.inner_text() == "Log in again"
    assert link.get_attribute("href") == "/login?next=%2F%3Fdays%3D30"
    public = page.locator("#report-public-visits table.data tbody tr")
    assert public.count() == 30  # the public reports still follow the range


def test_the_visits_chart_names_its_series_and_shows_values_by_the_cursor(served, traffic, page):
    open_dashboard(page, served.url + "/?days=7&interval=day")
    chart = page.locator("#report-public-visits .chart")
    # the legend names the series, with no placeholder values ("Time: --", "Users: –")
    legend = chart.locator(".u-legend").inner_text()
    assert "Visitors" in legend and "Views" in legend
    assert "--" not in legend and "–" not in legend and "Users" not in legend
    assert chart.locator(".chart-tooltip").is_hidden()

    week = api(page, served, f"/api/public/visits?from={TODAY - dt.timedelta(days=6)}&to={TODAY}")
    box = chart.locator(".u-over").bounding_box()
    # the third of seven days: a finished day, two sevenths into the plot
    page.mouse.move(box["x"] + box["width"] * 2 / 6, box["y"] + box["height"] / 2)
    tip = chart.locator(".chart-tooltip")
    tip.wait_for(state="visible", timeout=5_000)
    date, users, views = week["data"][2]
    text = tip.inner_text()
    assert text.splitlines()[0] == date
    assert f"Visitors: {users:,}" in text and f"Views: {views:,}" in text
    screenshot(page, "dashboard-tooltip")
    page.mouse.move(box["x"] - 20, box["y"] - 20)
    tip.wait_for(state="hidden", timeout=5_000)
    assert page.js_errors == []
