"""Sites in the web pages: a logged-in user lists, adds and edits them; CSRF guards every form."""

from __future__ import annotations

import re

import sqlalchemy as sa

from crumby import accounts
from crumby.extensions import db
from crumby.models import Site


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def _login(app, client) -> None:
    with app.app_context():
        accounts.add_user("owner", "correct horse")
    page = client.get("/login")
    token = _csrf(page.get_data(as_text=True))
    answer = client.post(
        "/login", data={"username": "owner", "password": "correct horse", "csrf_token": token}
    )
    assert answer.status_code == 302


def _sites(app) -> list[tuple]:
    with app.app_context():
        return [
            tuple(r) for r in db.session.execute(sa.select(Site.host, Site.timezone, Site.public))
        ]


def test_the_sites_page_needs_a_login(app, client):
    answer = client.get("/sites")
    assert answer.status_code == 302
    assert "/login" in answer.headers["Location"]
    assert client.post("/sites", data={"host": "a.example"}).status_code in (302, 400)
    assert _sites(app) == []


def test_a_user_adds_a_site_and_lands_on_its_dashboard(app, client):
    _login(app, client)
    page = client.get("/sites")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Add a site" in html and 'list="timezones"' in html
    answer = client.post(
        "/sites",
        data={
            "host": "WWW.Shop.Example",
            "timezone": "Europe/Berlin",
            "public": "y",
            "csrf_token": _csrf(html),
        },
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/?site=shop.example")
    assert _sites(app) == [("shop.example", "Europe/Berlin", True)]
    dashboard = client.get("/?site=shop.example").get_data(as_text=True)
    assert "Waiting for the first visit" in dashboard
    assert 'data-site="shop.example"' in dashboard


def test_bad_input_is_shown_on_the_form_and_stores_nothing(app, client):
    _login(app, client)
    token = _csrf(client.get("/sites").get_data(as_text=True))
    for data in (
        {"host": "https://a.example/x", "timezone": "UTC"},
        {"host": "a.example", "timezone": "Mars/Base"},
        {"host": "", "timezone": "UTC"},
    ):
        answer = client.post("/sites", data={**data, "csrf_token": token})
        assert answer.status_code == 400
        assert 'role="alert"' in answer.get_data(as_text=True)
    assert _sites(app) == []


def test_a_form_without_its_csrf_token_is_refused(app, client):
    _login(app, client)
    answer = client.post("/sites", data={"host": "a.example", "timezone": "UTC"})
    assert answer.status_code == 400
    assert _sites(app) == []


def test_a_user_edits_a_sites_zone_and_visibility(app, client):
    _login(app, client)
    token = _csrf(client.get("/sites").get_data(as_text=True))
    client.post("/sites", data={"host": "a.example", "timezone": "UTC", "csrf_token": token})
    page = client.get("/sites/a.example")
    assert page.status_code == 200
    answer = client.post(
        "/sites/a.example",
        data={
            "timezone": "Asia/Kolkata",
            "public": "y",
            "csrf_token": _csrf(page.get_data(as_text=True)),
        },
    )
    assert answer.status_code == 302
    assert _sites(app) == [("a.example", "Asia/Kolkata", True)]
    assert client.get("/sites/nowhere.example").status_code == 404
