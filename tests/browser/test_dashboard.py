"""The dashboard in headless Chromium: charts, the range picker, the headline, hostile data.

Until the reporting branch is merged, the JSON API is a small stand-in
blueprint defined here, answering with exactly the shapes INTERFACES.md
promises, computed from the real visits and events tables.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import Blueprint, Flask, abort, jsonify, request
from sqlalchemy import func, select

from crumby import demo
from crumby.extensions import db
from crumby.models import Event, Visit
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

TODAY = dt.datetime.now(dt.UTC).date()

# ---- the stand-in reporting API (INTERFACES.md shapes) -------------------------------

QUERIES = {
    "summary": {"title": "Summary", "chart": "kpi", "order": 0},
    "visits": {"title": "Visits", "chart": "line", "order": 10, "description": "Per day"},
    "documents": {"title": "Top pages", "chart": "bar", "order": 20},
    "locations": {"title": "Locations", "chart": "map", "order": 30},
    "languages": {"title": "Languages", "order": 40},  # no chart: inferred as bar
    "origins": {"title": "Referrers", "chart": "table", "order": 50},
    "events": {"title": "Events", "chart": "pie", "order": 60},
}


def _range() -> tuple[dt.date, dt.date]:
    try:
        t0 = dt.date.fromisoformat(request.args["from"])
        t1 = dt.date.fromisoformat(request.args["to"])
    except (KeyError, ValueError):
        abort(400)
    if t0 > t1:
        abort(400)
    return t0, t1


def _between(model, t0, t1):
    start = dt.datetime.combine(t0, dt.time())
    end = dt.datetime.combine(t1 + dt.timedelta(days=1), dt.time())
    return (model.datetime >= start) & (model.datetime < end) & (model.is_bot.is_(False))


def _run(name: str, t0: dt.date, t1: dt.date) -> tuple[list[str], list[list]]:
    in_range = _between(Visit, t0, t1)
    if name == "summary":
        visitors, views = db.session.execute(
            select(func.count(func.distinct(Visit.cid)), func.count()).where(in_range)
        ).one()
        sessions = round(views * 0.6)
        return ["visitors", "views", "sessions", "bounce_rate", "avg_duration"], [
            [visitors, views, sessions, 0.4 if views else 0, 95.5 if views else 0]
        ]
    if name == "visits":
        days = {}
        for when, cid in db.session.execute(select(Visit.datetime, Visit.cid).where(in_range)):
            users, views = days.setdefault(when.date(), (set(), [0]))
            users.add(cid)
            views[0] += 1
        rows = []
        day = t0
        while day <= t1:
            users, views = days.get(day, (set(), [0]))
            rows.append([day.isoformat(), len(users), views[0]])
            day += dt.timedelta(days=1)
        return ["date", "users", "views"], rows

    def grouped(*columns, model=Visit, where=in_range):
        stmt = select(*columns, func.count()).where(where).group_by(*columns)
        return [list(r) for r in db.session.execute(stmt.order_by(func.count().desc()))]

    if name == "documents":
        return ["title", "uri", "views"], grouped(Visit.doc_title, Visit.doc_uri)
    if name == "locations":
        return ["country", "visits"], grouped(Visit.country)
    if name == "languages":
        return ["lang", "visits"], grouped(Visit.lang)
    if name == "origins":
        return ["referrer", "visits"], grouped(Visit.referrer)
    if name == "events":
        return ["name", "value", "count"], grouped(
            Event.name, Event.value, model=Event, where=_between(Event, t0, t1)
        )
    raise AssertionError(name)


def stand_in_api() -> Blueprint:
    api = Blueprint("stand_in_reporting", __name__)

    @api.get("/api/public")
    def index():
        return jsonify(
            queries=[
                {"name": n, "url": f"/api/public/{n}", "description": "", **meta}
                for n, meta in QUERIES.items()
            ]
        )

    @api.get("/api/public/<name>")
    def report(name: str):
        if name not in QUERIES:
            return jsonify(error=f"no query {name}"), 404
        t0, t1 = _range()
        columns, data = _run(name, t0, t1)
        meta = QUERIES[name]
        body = {"name": name, "description": "", "columns": columns, "data": data}
        body.update(t0=t0.isoformat(), t1=t1.isoformat(), title=meta["title"])
        body["chart"] = meta.get("chart")
        return jsonify(body)

    return api


@pytest.fixture
def dashboard_app(app: Flask) -> Flask:
    app.register_blueprint(stand_in_api())
    return app


@pytest.fixture
def served(dashboard_app):
    from tests.browser.conftest import LiveServer

    with LiveServer(dashboard_app) as server:
        yield server


@pytest.fixture
def traffic(app):
    """90 days of the demo's synthetic traffic, scaled down."""
    with app.app_context():
        return demo.generate(days=90, sessions_per_day=12, seed=7, today=TODAY)


def open_dashboard(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#dashboard[data-ready]", timeout=20_000)


def headline(page) -> dict[str, str]:
    return {
        item.get_attribute("data-metric"): item.locator(".kpi-value").inner_text()
        for item in page.locator("#headline .kpi").all()
    }


# ---- the stories ------------------------------------------------------------------------


def test_every_report_gets_a_chart_and_a_table(served, traffic, page):
    open_dashboard(page, served.url + "/")
    reports = page.locator("#reports .report")
    names = [r.get_attribute("data-name") for r in reports.all()]
    # ordered by the queries' metadata; the summary query is the headline strip instead
    assert names == ["visits", "documents", "locations", "languages", "origins", "events"]
    for report in reports.all():
        assert report.locator(".chart canvas, .chart svg").count() >= 1, report.inner_html()
        assert report.locator("table.data tbody tr").count() >= 1
    assert page.locator('#report-public-visits .chart[data-chart="line"] canvas').count() >= 1
    assert page.locator('#report-public-languages .chart[data-chart="bar"] svg').count() == 1
    assert page.locator('#report-public-events .chart[data-chart="pie"] svg').count() == 1
    # the map colours the countries that sent visits, from the bundled outline
    shaded = page.locator("#report-public-locations svg.map path[data-value]")
    assert shaded.count() >= 10
    assert page.locator("#report-public-locations svg.map path").count() > 150
    figures = headline(page)
    assert list(figures) == ["visitors", "views", "sessions", "bounce_rate", "avg_duration"]
    assert int(figures["views"].replace(",", "")) > 100
    assert figures["bounce_rate"] == "40%" and figures["avg_duration"] == "1:36"
    assert "previous period" in page.locator("#headline .kpi-change").first.inner_text()
    assert page.js_errors == []


def test_changing_the_range_updates_every_report_without_reloading(served, traffic, page):
    open_dashboard(page, served.url + "/?days=7")
    page.evaluate("window.__same_page = true")
    week = headline(page)
    week_rows = page.locator("#report-public-visits table.data tbody tr").count()
    assert week_rows == 7
    assert page.locator('#range-picker a[data-days="7"]').get_attribute("aria-current") == "true"

    page.click('#range-picker a[data-days="90"]')
    page.wait_for_function(
        "document.getElementById('dashboard').dataset.ready.length && "
        "document.getElementById('report-public-visits')"
        ".querySelectorAll('table.data tbody tr').length > 7"
    )
    page.wait_for_selector("#dashboard[data-ready]")
    assert page.evaluate("window.__same_page") is True  # no reload
    assert page.url.endswith("?days=90")
    quarter = headline(page)
    assert int(quarter["views"].replace(",", "")) > int(week["views"].replace(",", ""))
    # the dashboard shows a top 10; the visits table then says how many rows there are
    assert "of 90 rows" in page.locator("#report-public-visits caption").inner_text()

    start = (TODAY - dt.timedelta(days=2)).isoformat()
    page.fill("#range-from", start)
    page.fill("#range-to", TODAY.isoformat())
    page.click("#range-picker button[type=submit]")
    page.wait_for_function(
        f"document.getElementById('dashboard').dataset.ready === '{start}/{TODAY.isoformat()}'"
    )
    assert f"from={start}" in page.url and f"to={TODAY.isoformat()}" in page.url
    assert page.locator("#report-public-visits table.data tbody tr").count() == 3

    page.go_back()
    page.wait_for_function(
        "document.getElementById('report-public-visits')"
        ".querySelectorAll('table.data tbody tr').length === 10"
    )
    assert page.url.endswith("?days=90")
    assert page.evaluate("window.__same_page") is True
    assert page.js_errors == []


def test_a_bookmarked_range_opens_as_it_was_shared(served, traffic, page):
    start, end = TODAY - dt.timedelta(days=13), TODAY - dt.timedelta(days=7)
    open_dashboard(page, f"{served.url}/?from={start}&to={end}")
    assert page.input_value("#range-from") == start.isoformat()
    assert page.input_value("#range-to") == end.isoformat()
    dates = page.locator(
        "#report-public-visits table.data tbody tr td:first-child"
    ).all_inner_texts()
    assert dates[0] == start.isoformat() and dates[-1] == end.isoformat()
    assert page.js_errors == []


XSS = {
    "doc_title": '<img src=x onerror="window.__xss=1">Title',
    "doc_uri": "javascript:window.__xss=2",
    "referrer": '"><script>window.__xss=3</script>',
    "lang": "<b>bold</b>",
}


def test_hostile_strings_in_every_tracked_field_stay_text(app, served, page):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=5)
    with app.app_context():
        db.session.add(Visit(cid="evil", datetime=now, country="DE", **XSS))
        db.session.add(
            Visit(cid="good", datetime=now, country="FR", referrer="https://example.org/from")
        )
        db.session.add(
            Event(
                cid="evil",
                datetime=now,
                name="<svg onload=window.__xss=4>",
                value="<iframe src=javascript:window.__xss=5>",
            )
        )
        db.session.commit()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_dashboard(page, served.url + "/?days=1")
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    reports = page.locator("#reports")
    for tag in ("img", "script", "b", "iframe"):
        assert reports.locator(tag).count() == 0, tag
    assert reports.locator("svg[onload]").count() == 0
    body = reports.inner_text()
    for text in (XSS["doc_title"], XSS["referrer"], XSS["lang"], "<svg onload=window.__xss=4>"):
        assert text in body
    # only the http(s) referrer became a link; the javascript: URL is plain text
    hrefs = reports.locator("a[href]:not(.report-page-link)").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert hrefs == ["https://example.org/from"]
    assert page.js_errors == []


def test_screenshots_at_desktop_and_phone_width(served, traffic, page):
    open_dashboard(page, served.url + "/?days=30")
    desktop = screenshot(page, "dashboard-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)  # the charts follow the new width
    widths = page.evaluate(
        "[...document.querySelectorAll('.report')].map(r => r.getBoundingClientRect().right)"
    )
    assert max(widths) <= 390  # nothing sticks out sideways on a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone = screenshot(page, "dashboard-phone")
    page.emulate_media(color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert re.match(r"rgb\((\d+), (\d+), (\d+)\)", background)
    assert sum(map(int, re.findall(r"\d+", background))) < 120  # dark, not white
    dark = screenshot(page, "dashboard-phone-dark")
    assert min(p.stat().st_size for p in (desktop, phone, dark)) > 10_000
    assert page.js_errors == []


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
    page.wait_for_function("location.search === '?days=7'")
    page.wait_for_function(
        "document.getElementById('report-public-visits')"
        ".querySelectorAll('table.data tbody tr').length === 7"
    )
    assert page.js_errors == []
