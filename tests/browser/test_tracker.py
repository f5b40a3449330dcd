"""cmb.js in real headless Chromium, embedded in a site served from another origin."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from crumby.extensions import db
from crumby.models import Event, Visit
from crumby.sites import add_site
from tests.browser.conftest import CHROMIUM_FLAGS, screenshot  # noqa: F401

pytestmark = pytest.mark.browser

#: a desktop Chrome, so hits are not flagged as coming from a headless bot
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def page_html(crumby: str, title: str, body: str = "", attrs: str = "", head: str = "") -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"<title>{title}</title>{head}"
        f"<script src='{crumby}/cmb.js' defer {attrs}></script></head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def site_pages(crumby: str) -> dict[str, str]:
    return {
        "/": page_html(
            crumby,
            "Tea shop",
            "<a id='next' href='/teas?utm_source=newsletter'>Our teas</a>"
            "<button id='buy' onclick=\"cmb.event('buy', 'sencha')\">Buy</button>"
            "<button id='plain' onclick=\"cmb.event('signup')\">Sign up</button>"
            "<button id='odd' onclick=\"cmb.event(42, 'lone \\ud800 + a&b=c')\">Odd</button>"
            "<button id='spa' onclick=\"history.pushState({}, '', '/checkout')\">Checkout</button>"
            "<button id='same' onclick=\"history.replaceState({}, '', '/?tab=2')\">Tab</button>"
            "<button id='moved' onclick=\"history.replaceState({}, '', '/moved')\">Move</button>",
        ),
        "/teas": page_html(crumby, "Our teas"),
        "/early": page_html(
            crumby,
            "Early events",
            head="<script>window.cmb=window.cmb||{q:[],event:function(){cmb.q.push(arguments)}};"
            "cmb.event('early', 'before load');</script>",
        ),
        "/dnt": page_html(crumby, "Private", attrs="data-respect-dnt"),
        "/local": page_html(crumby, "Local", attrs="data-skip-localhost"),
    }


@pytest.fixture
def visitor(browser) -> Iterator[object]:
    """A person's browser: German, a 1920x1080 screen, a normal Chrome User-Agent."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        screen={"width": 1920, "height": 1080},
        locale="de-DE",
        user_agent=DESKTOP_CHROME,
    )
    page = context.new_page()
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    page.on("console", lambda msg: page.js_errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()


def wait_for_rows(app, model, n: int, timeout: float = 10.0) -> list:
    """Hits are sent asynchronously: poll until ``n`` rows of ``model`` are stored."""
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            rows = db.session.scalars(select(model).order_by(model.id)).all()
            db.session.expunge_all()
            db.session.remove()
        if len(rows) >= n or time.monotonic() > deadline:
            return list(rows)
        time.sleep(0.1)


def settle(page) -> None:
    """Let any beacon leave the browser."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)


def cookie(page, name: str) -> str | None:
    for item in page.context.cookies():
        if item["name"] == name:
            return item["value"]
    return None


@pytest.fixture
def site(app, live_server, other_origin: Callable) -> str:
    """The tracked site on its own origin, embedding cmb.js from Crumby's origin.

    Its host (127.0.0.1, another port than Crumby's) is a registered site, so every
    hit it sends is stored: a test that expects nothing stored proves cmb.js sent nothing.
    """
    with app.app_context(), db.engine.begin() as conn:
        add_site(conn, "127.0.0.1")
    server = other_origin(site_pages(live_server.url))
    assert server.url != live_server.url
    return server.url


def test_a_page_view_lands_one_visit_with_url_title_screen_and_language(
    app, site, visitor, live_server
):
    response = visitor.goto(site + "/")
    assert response.status == 200
    [visit] = wait_for_rows(app, Visit, 1)
    assert visit.doc_uri == site + "/"
    assert visit.doc_title == "Tea shop"
    assert visit.screen_res == "1920x1080"
    assert visit.screen_depth == "24-bit"
    assert visit.lang == "de-DE"
    assert visit.doc_enc == "UTF-8"
    assert (visit.browser, visit.platform, visit.is_bot) == ("Chrome", "Linux", False)
    assert visit.cid and visit.cid == cookie(visitor, "cid")
    settle(visitor)
    assert len(wait_for_rows(app, Visit, 2, timeout=0.5)) == 1  # exactly one per page view
    screenshot(visitor, "tracker-page")
    assert visitor.js_errors == []


def test_cid_cookie_is_set_once_and_reused_across_pages(app, site, visitor):
    visitor.goto(site + "/")
    wait_for_rows(app, Visit, 1)
    cid = cookie(visitor, "cid")
    assert cid and len(cid) >= 20
    [jar] = [c for c in visitor.context.cookies() if c["name"] == "cid"]
    assert jar["sameSite"] == "Lax"
    # cmb.js asks for two years; Chromium keeps cookies at most 400 days
    assert jar["expires"] - time.time() > 399 * 86400
    visitor.click("#next")
    visitor.wait_for_url(site + "/teas?utm_source=newsletter")
    first, second = wait_for_rows(app, Visit, 2)
    assert second.doc_title == "Our teas"
    assert second.utm_source == "newsletter"
    assert second.referrer == site + "/"
    assert first.cid == second.cid == cid == cookie(visitor, "cid")
    # the two pages are one session: its entry view, then its second view
    assert (first.session_seq, second.session_seq) == (1, 2)
    assert first.session_start == second.session_start == first.datetime
    assert second.doc_host == "127.0.0.1" and second.referrer_host == "127.0.0.1"
    assert visitor.js_errors == []


def test_a_button_calling_cmb_event_lands_one_event(app, site, visitor):
    visitor.goto(site + "/")
    wait_for_rows(app, Visit, 1)
    visitor.click("#buy")
    [event] = wait_for_rows(app, Event, 1)
    assert (event.name, event.value) == ("buy", "sencha")
    assert event.doc_uri == site + "/"
    assert event.doc_title == "Tea shop"
    assert event.cid == cookie(visitor, "cid")
    settle(visitor)
    assert len(wait_for_rows(app, Event, 2, timeout=0.5)) == 1
    assert visitor.js_errors == []


def test_an_event_without_a_value_or_with_odd_text_is_stored_as_given(app, site, visitor):
    visitor.goto(site + "/")
    wait_for_rows(app, Visit, 1)
    visitor.click("#plain")
    [event] = wait_for_rows(app, Event, 1)
    assert (event.name, event.value) == ("signup", None)  # no value: NULL, not ""
    visitor.click("#odd")  # a number as name; a lone surrogate, '+', '&' and '=' in the value
    _, odd = wait_for_rows(app, Event, 2)
    assert (odd.name, odd.value) == ("42", "lone \ufffd + a&b=c")
    assert visitor.js_errors == []


def test_push_state_navigation_lands_a_second_visit(app, site, visitor):
    visitor.goto(site + "/")
    wait_for_rows(app, Visit, 1)
    visitor.click("#same")  # replaceState on the same path: not a new page
    visitor.click("#spa")  # pushState to /checkout: a page view
    first, second = wait_for_rows(app, Visit, 2)
    assert second.doc_uri == site + "/checkout"
    assert second.referrer == site + "/"  # the last page view
    assert second.cid == first.cid
    visitor.go_back()  # popstate back to / is a page view too
    visits = wait_for_rows(app, Visit, 3)
    assert [v.doc_uri for v in visits] == [site + "/", site + "/checkout", site + "/?tab=2"]
    settle(visitor)
    assert len(wait_for_rows(app, Visit, 4, timeout=0.5)) == 3
    assert visitor.js_errors == []


def test_replace_state_to_a_new_path_lands_a_visit(app, site, visitor):
    visitor.goto(site + "/")
    wait_for_rows(app, Visit, 1)
    visitor.click("#moved")
    first, second = wait_for_rows(app, Visit, 2)
    assert second.doc_uri == site + "/moved"
    assert second.doc_title == "Tea shop"
    assert visitor.js_errors == []


def test_events_queued_before_the_script_loaded_are_sent(app, site, visitor):
    visitor.goto(site + "/early")
    [event] = wait_for_rows(app, Event, 1)
    assert (event.name, event.value, event.doc_title) == ("early", "before load", "Early events")
    assert visitor.js_errors == []


def test_blocked_cookies_and_storage_neither_break_the_page_nor_lose_the_visit(app, site, visitor):
    visitor.add_init_script(
        "for (const [o, p] of [[Document.prototype, 'cookie'], [window, 'localStorage']])"
        "  Object.defineProperty(o, p, {get() { throw new DOMException('blocked', "
        "'SecurityError') }, set() { throw new DOMException('blocked', 'SecurityError') }});"
    )
    visitor.goto(site + "/")
    [visit] = wait_for_rows(app, Visit, 1)
    assert visit.cid.startswith("anon-")  # the server's daily id stands in
    visitor.click("#buy")
    [event] = wait_for_rows(app, Event, 1)
    assert event.cid == visit.cid
    assert visitor.js_errors == []


def test_without_send_beacon_an_image_request_carries_the_hit(app, site, visitor):
    visitor.add_init_script("delete Navigator.prototype.sendBeacon;")
    requests: list[str] = []
    visitor.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    visitor.goto(site + "/")
    [visit] = wait_for_rows(app, Visit, 1)
    assert visit.doc_title == "Tea shop"
    assert any(r.startswith("GET ") and "/visit?" in r for r in requests)
    assert visitor.js_errors == []


def test_respect_dnt_sends_nothing_when_the_visitor_asks_for_privacy(app, site, visitor):
    visitor.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"
    )
    requests: list[str] = []
    visitor.on("request", lambda r: requests.append(r.url))
    visitor.goto(site + "/dnt")
    settle(visitor)
    assert any(url.endswith("/cmb.js") for url in requests)
    assert not any("/visit" in url or "/event" in url for url in requests)
    assert visitor.evaluate("typeof cmb.event") == "function"  # calls stay harmless
    visitor.evaluate("cmb.event('ignored')")
    settle(visitor)
    assert wait_for_rows(app, Visit, 1, timeout=0.3) == []
    assert wait_for_rows(app, Event, 1, timeout=0.3) == []
    assert visitor.js_errors == []


def test_skip_localhost_sends_nothing_from_a_local_site(app, site, visitor):
    requests: list[str] = []
    visitor.on("request", lambda r: requests.append(r.url))
    visitor.goto(site + "/local")  # the test site is on 127.0.0.1
    settle(visitor)
    assert not any("/visit" in url for url in requests)
    assert wait_for_rows(app, Visit, 1, timeout=0.3) == []
    assert visitor.js_errors == []
