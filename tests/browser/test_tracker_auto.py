"""cmb.auto.js in real headless Chromium: outbound links, downloads and 404 pages as events.

The tracked site is served from its own origin and embeds the tracker from
Crumby's; outbound links go to a third origin. The default cmb.js, on the same
pages, sends none of these events.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from crumby.extensions import db
from crumby.models import Event, Visit
from crumby.sites import add_site
from tests.browser import test_tracker
from tests.browser.test_tracker import settle, wait_for_rows

# what the tracker sends does not depend on the database; the events' storage is tested on
# every database by tests/test_tracking_endpoints.py
pytestmark = [pytest.mark.browser, pytest.mark.one_database]

#: the fixture of test_tracker: a German desktop Chrome with a 1920x1080 screen
visitor = test_tracker.visitor


#: a page without the tracker (files, the other origin's page)
BARE = "<!doctype html><link rel='icon' href='data:,'><title>{0}</title>{0}"


def page_html(crumby: str, script: str, title: str, body: str = "", attrs: str = "") -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"<title>{title}</title>"
        f"<script src='{crumby}/{script}' defer {attrs}></script></head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def links(elsewhere: str) -> str:
    return (
        f"<p><a id='out' href='{elsewhere}/landing?from=shop'>Our supplier</a></p>"
        "<p><a id='pdf' href='/files/Menu.PDF?v=2'>The menu</a></p>"
        "<p><a id='epub' href='/files/recipes.epub'>Recipes</a></p>"
        "<p><a id='named' href='/price-list' download>Prices</a></p>"
        "<p><a id='inside' href='/about'>About us <b id='bold'>(bold)</b></a></p>"
        "<p><a id='mail' href='mailto:shop@example.org'>Mail us</a></p>"
    )


def shop_pages(crumby: str, elsewhere: str, script: str) -> dict[str, str]:
    files = {"/files/Menu.PDF": "pdf", "/files/recipes.epub": "epub", "/price-list": "prices"}
    return {
        "/": page_html(crumby, script, "Tea shop", links(elsewhere)),
        "/custom": page_html(crumby, script, "Custom", links(elsewhere), "data-downloads='epub'"),
        "/quiet": page_html(
            crumby, script, "Quiet", links(elsewhere), "data-no-outbound data-no-downloads"
        ),
        "/missing": page_html(crumby, script, "Page not found", attrs="data-404"),
        "/missing-by-hand": page_html(
            crumby,
            script,
            "Page not found",
            "<script>window.cmb=window.cmb||{q:[],event:function(){cmb.q.push(arguments)}};"
            "cmb.event('404', location.href);</script>",
        ),
        "/about": page_html(crumby, script, "About us"),
        **{path: BARE.format(kind) for path, kind in files.items()},
    }


@pytest.fixture
def serve(app, live_server, other_origin: Callable) -> Callable[[str], tuple[str, str]]:
    """Serve the shop embedding ``script``; answers (shop URL, the other origin's URL)."""
    with app.app_context(), db.engine.begin() as conn:
        add_site(conn, "127.0.0.1")

    def start(script: str) -> tuple[str, str]:
        elsewhere = other_origin({"/landing": BARE.format("Supplier")})
        shop = other_origin(shop_pages(live_server.url, elsewhere.url, script))
        return shop.url, elsewhere.url

    return start


def events(app, n: int = 1, timeout: float = 10.0) -> list[tuple[str, str | None]]:
    return [(e.name, e.value) for e in wait_for_rows(app, Event, n, timeout)]


def test_an_outbound_link_click_lands_one_event_and_the_navigation_happens(app, serve, visitor):
    shop, elsewhere = serve("cmb.auto.js")
    beacons: list[str] = []
    visitor.on("request", lambda r: beacons.append(r.method) if "/event" in r.url else None)
    visitor.goto(shop + "/")
    wait_for_rows(app, Visit, 1)
    # a listener of the page's own, after cmb.auto.js's, sees the click not cancelled
    visitor.evaluate(
        "document.addEventListener('click', e => { sessionStorage.cancelled = e.defaultPrevented })"
    )
    visitor.click("#out")
    visitor.wait_for_url(elsewhere + "/landing?from=shop")
    assert visitor.title() == "Supplier"
    assert events(app) == [("outbound", elsewhere + "/landing?from=shop")]
    [event] = wait_for_rows(app, Event, 1)
    assert event.doc_uri == shop + "/"  # the page the link was on
    assert event.doc_title == "Tea shop"
    settle(visitor)
    assert len(wait_for_rows(app, Event, 2, timeout=0.5)) == 1  # exactly one
    assert beacons == ["POST"]  # a beacon, not an image the unload could cancel
    visitor.go_back()
    assert visitor.evaluate("sessionStorage.cancelled") == "false"
    assert visitor.js_errors == []


def test_a_middle_click_on_an_outbound_link_counts_too(app, serve, visitor):
    shop, elsewhere = serve("cmb.auto.js")
    visitor.goto(shop + "/")
    wait_for_rows(app, Visit, 1)
    with visitor.context.expect_page() as opened:
        visitor.click("#out", button="middle")
    opened.value.wait_for_load_state()
    assert events(app) == [("outbound", elsewhere + "/landing?from=shop")]
    visitor.click("#out", button="right")  # a context menu is no click on the link
    visitor.keyboard.press("Escape")
    settle(visitor)
    assert len(wait_for_rows(app, Event, 2, timeout=0.5)) == 1
    assert visitor.js_errors == []


def test_download_links_land_download_events_with_the_file_url(app, serve, visitor):
    shop, _ = serve("cmb.auto.js")
    visitor.goto(shop + "/")
    wait_for_rows(app, Visit, 1)
    visitor.click("#pdf")  # a listed type, whatever its case, and a query string
    visitor.wait_for_url(shop + "/files/Menu.PDF?v=2")
    assert events(app) == [("download", shop + "/files/Menu.PDF?v=2")]
    visitor.go_back()
    visitor.click("#named")  # no extension, but a download attribute
    assert events(app, 2) == [
        ("download", shop + "/files/Menu.PDF?v=2"),
        ("download", shop + "/price-list"),
    ]
    visitor.click("#bold")  # a click inside an ordinary link of the site: no event
    visitor.wait_for_url(shop + "/about")
    settle(visitor)
    assert len(wait_for_rows(app, Event, 3, timeout=0.5)) == 2
    assert [v.doc_uri for v in wait_for_rows(app, Visit, 3)][-1] == shop + "/about"
    assert visitor.js_errors == []


def test_data_downloads_replaces_the_file_types(app, serve, visitor):
    shop, _ = serve("cmb.auto.js")
    visitor.goto(shop + "/custom")
    wait_for_rows(app, Visit, 1)
    visitor.click("#pdf")  # not in data-downloads='epub' any more
    visitor.wait_for_url(shop + "/files/Menu.PDF?v=2")
    visitor.go_back()
    visitor.click("#epub")
    visitor.wait_for_url(shop + "/files/recipes.epub")
    assert events(app) == [("download", shop + "/files/recipes.epub")]
    settle(visitor)
    assert len(wait_for_rows(app, Event, 2, timeout=0.5)) == 1
    assert visitor.js_errors == []


def test_a_404_page_lands_a_404_event_with_its_url(app, serve, visitor):
    shop, _ = serve("cmb.auto.js")
    visitor.goto(shop + "/missing?ref=old")
    assert events(app) == [("404", shop + "/missing?ref=old")]
    [visit] = wait_for_rows(app, Visit, 1)  # still a page view, too
    assert visit.doc_title == "Page not found"
    settle(visitor)
    assert len(wait_for_rows(app, Event, 2, timeout=0.5)) == 1
    assert visitor.js_errors == []


@pytest.mark.parametrize("script", ["cmb.js", "cmb.auto.js"])
def test_a_404_template_can_send_the_event_itself_with_either_build(app, serve, visitor, script):
    shop, _ = serve(script)
    visitor.goto(shop + "/missing-by-hand")
    assert events(app) == [("404", shop + "/missing-by-hand")]
    settle(visitor)
    assert len(wait_for_rows(app, Event, 2, timeout=0.5)) == 1
    assert visitor.js_errors == []


def test_data_no_outbound_and_data_no_downloads_switch_them_off(app, serve, visitor):
    shop, elsewhere = serve("cmb.auto.js")
    visitor.goto(shop + "/quiet")
    wait_for_rows(app, Visit, 1)
    visitor.click("#pdf")
    visitor.wait_for_url(shop + "/files/Menu.PDF?v=2")
    visitor.go_back()
    visitor.click("#out")
    visitor.wait_for_url(elsewhere + "/landing?from=shop")
    settle(visitor)
    assert wait_for_rows(app, Event, 1, timeout=0.5) == []
    assert visitor.js_errors == []


def test_the_default_build_sends_no_automatic_events(app, serve, visitor):
    shop, elsewhere = serve("cmb.js")
    requests: list[str] = []
    visitor.on("request", lambda r: requests.append(r.url))
    visitor.goto(shop + "/missing")  # data-404 means nothing to cmb.js
    wait_for_rows(app, Visit, 1)
    visitor.goto(shop + "/")
    wait_for_rows(app, Visit, 2)
    for link, landed in [
        ("#pdf", shop + "/files/Menu.PDF?v=2"),
        ("#named", None),
        ("#out", elsewhere + "/landing?from=shop"),
    ]:
        visitor.click(link)
        if landed:
            visitor.wait_for_url(landed)
            visitor.go_back()
    settle(visitor)
    assert not any("/event" in url for url in requests)
    assert wait_for_rows(app, Event, 1, timeout=0.5) == []
    assert visitor.js_errors == []
