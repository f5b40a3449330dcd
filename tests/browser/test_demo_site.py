"""The demo site: Crumby's own pages embedding cmb.js, so clicks show up on the dashboard."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from crumby import demo
from crumby.extensions import db
from crumby.models import Event, Visit
from crumby.sites import find_site
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser


def wait_for_rows(app, model, where, timeout: float = 15) -> list:
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            rows = db.session.scalars(sa.select(model).where(where)).all()
            db.session.remove()
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_clicking_around_the_demo_site_is_recorded(app, page):
    """The demo's pages are served from Crumby's own host (here 127.0.0.1), which is not
    the demo site's: cmb.js names the site (``data-site``) so that the hits count."""
    app.config["DEMO"] = True
    with app.app_context():
        demo.register_site()
    with LiveServer(app) as server:
        page.goto(server.url + "/demo/")
        visits = wait_for_rows(app, Visit, Visit.doc_uri == server.url + "/demo/")
        assert len(visits) == 1
        assert visits[0].doc_title == "Example Bakery – fresh bread every morning"
        page.click("text=Menu · Example Bakery")
        page.wait_for_url(server.url + "/demo/menu")
        page.click("button[data-event=order]")
        assert "Sent the event" in page.locator("#demo-status").inner_text()
        events = wait_for_rows(app, Event, Event.name == "order")
        assert [(e.value, e.doc_uri) for e in events] == [("bread", server.url + "/demo/menu")]
        assert wait_for_rows(app, Visit, Visit.doc_uri == server.url + "/demo/menu")
        # cmb.auto.js: the menu link is a download, an unknown page the "not found" page
        with page.expect_download():
            page.click("text=Download the menu")
        downloads = wait_for_rows(app, Event, Event.name == "download")
        assert [(e.value, e.doc_uri) for e in downloads] == [
            (server.url + "/demo/menu.pdf", server.url + "/demo/menu")
        ]
        page.goto(server.url + "/demo/old-page")
        missing = wait_for_rows(app, Event, Event.name == "404")
        assert [e.value for e in missing] == [server.url + "/demo/old-page"]
        with app.app_context():
            sites = set(db.session.scalars(sa.select(Visit.site_id)))
            sites |= set(db.session.scalars(sa.select(Event.site_id)))
            demo_site = find_site(db.session.connection(), demo.SITE_HOST)
            db.session.remove()
        assert sites == {demo_site.id}
    # the browser's own line about the "not found" page's status, nothing else
    assert [e for e in page.js_errors if "404" not in e] == []
