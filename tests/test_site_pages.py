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


def test_with_several_sites_the_front_page_lists_those_one_may_see(app, client):
    import datetime as dt

    from crumby import clock, ingest
    from crumby.sites import add_site

    now = dt.datetime(2026, 5, 20, 12, 0)
    clock.pin(app, now)
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, "open.example", "Pacific/Auckland", public=True)
        add_site(connection, "closed.example")
    visits = [
        {
            "datetime": now - dt.timedelta(days=d),
            "cid": f"v{d % 3}",
            "doc_uri": "https://open.example/",
        }
        for d in range(40)  # 30 local days hold visitors v0, v1, v2
    ]
    with app.app_context():
        ingest.store(app, visits)
    anonymous = client.get("/").get_data(as_text=True)
    assert "open.example" in anonymous and "closed.example" not in anonymous
    row = re.search(r'open\.example</a>.*?<td class="num">(\d+)</td>', anonymous, re.S)
    assert row and row.group(1) == "3"
    assert "<polyline" in anonymous
    _login(app, client)
    everything = client.get("/").get_data(as_text=True)
    assert "closed.example" in everything
    assert client.get("/?site=closed.example").status_code == 200
    assert client.get("/?site=nowhere.example").status_code == 404


def test_a_private_site_sends_anonymous_visitors_to_the_login_page(app, client):
    with app.app_context(), db.engine.begin() as connection:
        from crumby.sites import add_site

        add_site(connection, "closed.example")
    for path in ("/", "/?site=closed.example", "/reports/public/visits?site=closed.example"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert "/login" in answer.headers["Location"]


def test_a_fresh_install_shows_how_to_start(app, client):
    html = client.get("/").get_data(as_text=True)
    assert "crumby addsite" in html
    assert '<script src="http://localhost:5000/cmb.js" defer></script>' in html.replace(
        "&lt;", "<"
    ).replace("&gt;", ">").replace("&#34;", '"').replace("&quot;", '"')


def test_a_bad_range_in_a_page_url_is_said_once_and_the_page_shows_the_last_30_days(app, client):
    import datetime as dt

    from crumby import clock
    from crumby.sites import add_site

    clock.pin(app, dt.datetime(2026, 5, 20, 12, 0))
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, "open.example", public=True)
    for path in ("/", "/reports/public/documents"):
        for bad, words in [
            ("from=2026-02-30&to=2026-03-01", "from is not a real date: 2026-02-30"),
            ("days=abc", "days must be a whole number"),
            ("days=100000", "days reaches before"),
            ("from=2026-03-02&to=2026-03-01", "from must not be after to"),
        ]:
            page = client.get(f"{path}?site=open.example&{bad}").get_data(as_text=True)
            assert page.count('id="range-error"') == 1 and words in page, (path, bad)
            # the API calls the page starts early are for the last 30 days, not the bad range
            preloads = re.findall(r'<link rel="preload" href="([^"]*/api/[^"]+)"', page)
            assert preloads and "from=2026-04-21&amp;to=2026-05-20" in preloads[0]
            assert not any("2026-02-30" in u or "days=" in u for u in preloads)
        good = client.get(f"{path}?site=open.example&days=7").get_data(as_text=True)
        assert 'id="range-error"' not in good


def test_the_welcome_page_offers_the_sites_page_to_a_logged_in_user(app, client):
    assert 'href="/sites"' not in client.get("/").get_data(as_text=True)
    _login(app, client)
    html = client.get("/").get_data(as_text=True)
    assert "Welcome to Crumby" in html and 'on the <a href="/sites">Sites page</a>' in html
