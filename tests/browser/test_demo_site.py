"""The demo site: Crumby's own pages embedding cmb.js, so clicks show up on the dashboard."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from crumby.extensions import db
from crumby.models import Event, Visit
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
    app.config["DEMO"] = True
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
    assert page.js_errors == []
