"""Share links, embeddable cards and the installation check (site settings page).

A share link opens one site's whole dashboard read-only without a login,
only that site, and stops the moment it is revoked; it is never indexed.
A public site's card (and a share link's card) may be framed by any page;
nothing else may.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from crumby import accounts, clock, create_app
from crumby.database import _share_links, ensure_schema
from crumby.extensions import db
from crumby.models import ShareLink
from crumby.sharing import create_share, list_shares, site_for_token
from crumby.sites import add_site, delete_site, find_site
from tests import upgrades

NOW = dt.datetime(2026, 3, 4, 14, 0)
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SHARE = re.compile(r"/share/([A-Za-z0-9_-]{32})")


def csrf(html: str) -> str:
    return CSRF.search(html).group(1)


@pytest.fixture
def sites(app):
    clock.pin(app, NOW)
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, "secret.example", "Europe/Berlin", public=False)
        add_site(connection, "open.example", "UTC", public=True)
        add_site(connection, "other.example", "UTC", public=False)
    return app


@pytest.fixture
def owner(sites, client):
    with sites.app_context():
        accounts.add_user("owner", "correct horse")
    form = csrf(client.get("/login").text)
    answer = client.post(
        "/login", data={"username": "owner", "password": "correct horse", "csrf_token": form}
    )
    assert answer.status_code == 302
    return client


def share_of(app, host: str, label: str = "") -> str:
    with app.app_context(), db.engine.begin() as connection:
        return create_share(connection, find_site(connection, host), label).token


def share_rows(app) -> list[tuple]:
    with app.app_context():
        return [tuple(r) for r in db.session.execute(sa.select(ShareLink.site_id, ShareLink.label))]


def hit(client, host: str, path: str = "/", cid: str = "v1") -> None:
    assert (
        client.post("/visit", json={"dl": f"https://{host}{path}", "cid": cid}).status_code == 204
    )


# ---- making and revoking links on the settings page ------------------------------------


def test_the_owner_makes_a_link_and_sees_it_listed(sites, owner):
    page = owner.get("/sites/secret.example")
    assert page.status_code == 200
    assert 'id="no-shares"' in page.text and 'id="share-form"' in page.text
    answer = owner.post(
        "/sites/secret.example/shares",
        data={"label": "For the board", "csrf_token": csrf(page.text)},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/sites/secret.example#sharing")
    with sites.app_context():
        site_id = find_site(db.session.connection(), "secret.example").id
    assert share_rows(sites) == [(site_id, "For the board")]
    listed = owner.get("/sites/secret.example").text
    (token,) = set(SHARE.findall(listed))
    assert "For the board" in listed and f"http://localhost/share/{token}" in listed
    assert f"/share/{token}/embed" in listed  # each link has its own card


@pytest.mark.parametrize(
    "label, message",
    [("x" * 81, "Field cannot be longer than 80 characters."), ("a\x07b", "control characters")],
)
def test_a_bad_name_is_shown_on_the_page_and_stores_nothing(sites, owner, label, message):
    page = owner.get("/sites/secret.example").text
    answer = owner.post(
        "/sites/secret.example/shares", data={"label": label, "csrf_token": csrf(page)}
    )
    assert answer.status_code == 400
    assert 'role="alert"' in answer.text and message in answer.text
    assert share_rows(sites) == []


def test_making_or_revoking_a_link_needs_a_login_and_a_csrf_token(sites, client, owner):
    anonymous = sites.test_client()
    answer = anonymous.post("/sites/secret.example/shares", data={"label": "x"})
    assert answer.status_code in (302, 400)
    assert owner.post("/sites/secret.example/shares", data={"label": "x"}).status_code == 400
    assert share_rows(sites) == []
    token = share_of(sites, "secret.example")
    [link] = list_links(sites, "secret.example")
    for who in (anonymous, owner):
        answer = who.post(f"/sites/secret.example/shares/{link}/revoke", data={})
        assert answer.status_code in (302, 400)
    assert sites.test_client().get(f"/share/{token}").status_code == 200


def list_links(app, host: str) -> list[int]:
    with app.app_context(), db.engine.connect() as connection:
        return [s.id for s in list_shares(connection, find_site(connection, host))]


def test_a_revoked_link_is_404_everywhere_at_once(sites, owner):
    token = share_of(sites, "secret.example")
    visitor = sites.test_client()
    api = f"/api/private/referrers?site=secret.example&share={token}"
    assert visitor.get(f"/share/{token}").status_code == 200
    assert visitor.get(api).status_code == 200
    [link] = list_links(sites, "secret.example")
    page = owner.get("/sites/secret.example").text
    answer = owner.post(
        f"/sites/secret.example/shares/{link}/revoke", data={"csrf_token": csrf(page)}
    )
    assert answer.status_code == 302
    assert "Revoked the share link" in owner.get("/sites/secret.example").text
    assert share_rows(sites) == []
    gone = visitor.get(f"/share/{token}")
    assert gone.status_code == 404 and "revoked" in gone.text
    assert visitor.get(api).status_code == 401
    assert visitor.get(f"/share/{token}/embed").status_code == 404


def test_revoking_another_sites_link_or_a_gone_one_is_404(sites, owner):
    share_of(sites, "other.example")
    [link] = list_links(sites, "other.example")
    page = owner.get("/sites/secret.example").text
    for share_id in (link, link + 99):
        answer = owner.post(
            f"/sites/secret.example/shares/{share_id}/revoke", data={"csrf_token": csrf(page)}
        )
        assert answer.status_code == 404 and "no such share link" in answer.text
    # an id past any database's integer is not a link either (no overflow, no 500)
    answer = owner.post(
        "/sites/secret.example/shares/99999999999999999999/revoke", data={"csrf_token": csrf(page)}
    )
    assert answer.status_code == 404
    answer = owner.post("/sites/nowhere.example/shares", data={"csrf_token": csrf(page)})
    assert answer.status_code == 404
    assert len(share_rows(sites)) == 1


# ---- what a link opens -------------------------------------------------------------------


def test_a_link_opens_the_whole_dashboard_of_its_private_site_without_login(sites, owner):
    hit(sites.test_client(), "secret.example", "/pricing")
    token = share_of(sites, "secret.example")
    visitor = sites.test_client()
    assert visitor.get("/?site=secret.example").status_code == 302  # still private
    answer = visitor.get(f"/share/{token}")
    assert answer.status_code == 200
    html = answer.text
    assert answer.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert "no-store" in answer.headers["Cache-Control"]
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert "<h1>secret.example" in html
    # the private reports are there, and each API call carries the link
    urls = [u.replace("&amp;", "&") for u in re.findall(r'data-url="([^"]+)"', html)]
    assert any("/api/private/" in u for u in urls) and any("/api/public/" in u for u in urls)
    assert all(u.endswith(f"share={token}") for u in urls)
    # no way to other sites, no owner links, no onboarding form to verify
    assert "other.example" not in html and 'id="site-switch"' not in html
    assert "/sites/secret.example" not in html and "Verify installation" not in html
    # the cards' calls answer (the funnel's waits for a funnel to be chosen)
    for url in [u for u in urls if "/funnel?" not in u]:
        assert visitor.get(url + "&days=7").status_code == 200, url
    [pages] = [u for u in urls if "/api/public/documents?" in u]
    answer = visitor.get(pages + "&days=7")
    assert answer.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert answer.get_json()["site"] == "secret.example"
    assert "/pricing" in str(answer.get_json()["data"])


def test_a_link_reads_its_own_site_only(sites):
    token = share_of(sites, "secret.example")
    visitor = sites.test_client()
    for host in ("other.example", "open.example"):
        answer = visitor.get(f"/api/private/referrers?site={host}&share={token}")
        assert answer.status_code == 401, host
    # another site's dashboard is not opened by it either (a private one asks for a login)
    assert visitor.get(f"/share/{token}?site=other.example").status_code == 302
    assert visitor.get(f"/?site=other.example&share={token}").status_code == 302
    # nor does it make anything writable: the settings pages still need a login
    assert visitor.get(f"/sites/secret.example?share={token}").status_code == 302
    assert visitor.get(f"/account?share={token}").status_code == 302


def test_report_pages_open_through_the_link_without_their_sql(sites):
    token = share_of(sites, "secret.example")
    visitor = sites.test_client()
    answer = visitor.get(f"/reports/private/referrers?site=secret.example&share={token}")
    assert answer.status_code == 200
    assert answer.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert f"share={token}" in answer.text  # its API URL and its way back keep the link
    assert 'name="share"' in answer.text  # the custom range form too
    assert "SELECT" not in answer.text
    assert visitor.get("/reports/private/referrers?site=secret.example").status_code == 302


@pytest.mark.parametrize(
    "token", ["nope", "x" * 32, "x" * 65, "%00abc", "a b", "ÄÖÜ" * 4, "Z" * 500]
)
def test_unknown_or_malformed_tokens_are_404_or_401(sites, token):
    share_of(sites, "secret.example")
    visitor = sites.test_client()
    assert visitor.get(f"/share/{token}").status_code == 404
    assert visitor.get(f"/share/{token}/embed").status_code == 404
    answer = visitor.get(
        "/api/private/pages", query_string={"site": "secret.example", "share": token}
    )
    assert answer.status_code == 401 and answer.get_json()["error"]
    with sites.app_context(), db.engine.connect() as connection:
        assert site_for_token(connection, token) is None


def test_a_token_differing_only_in_case_opens_nothing(sites):
    token = share_of(sites, "secret.example")
    other = token.swapcase()
    assert other != token
    assert sites.test_client().get(f"/share/{other}").status_code == 404


def test_deleting_a_site_deletes_its_links(sites):
    token = share_of(sites, "secret.example")
    share_of(sites, "other.example")
    with sites.app_context(), db.engine.begin() as connection:
        delete_site(connection, "secret.example")
    assert len(share_rows(sites)) == 1
    with sites.app_context(), db.engine.begin() as connection:
        add_site(connection, "secret.example")  # the same host again opens nothing old
    assert sites.test_client().get(f"/share/{token}").status_code == 404


# ---- embeddable cards ------------------------------------------------------------------


def test_a_public_sites_card_can_be_framed_by_any_page(sites, client):
    for cid in ("a", "b"):
        hit(client, "open.example", "/", cid)
    hit(client, "open.example", "/more", "a")
    answer = client.get("/embed/open.example")
    assert answer.status_code == 200
    csp = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors *" in csp and "frame-ancestors 'none'" not in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "X-Frame-Options" not in answer.headers
    assert answer.headers["X-Robots-Tag"] == "noindex, nofollow"
    html = answer.text
    assert '<dd id="embed-visitors">2</dd>' in html and '<dd id="embed-views">3</dd>' in html
    assert "<polyline points=" in html and "<script" not in html and "style=" not in html
    assert 'href="http://localhost/?site=open.example"' in html


def test_private_sites_and_other_pages_cannot_be_framed(sites, client):
    for path in ("/embed/secret.example", "/embed/nowhere.example", "/embed/%00"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Frame-Options"] == "DENY"
    for path in ("/?site=open.example", "/login", "/reports/public/pages?site=open.example"):
        answer = client.get(path)
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], path
        assert answer.headers["X-Frame-Options"] == "DENY", path


def test_a_share_links_card_frames_a_private_site_until_revoked(sites, client):
    hit(client, "secret.example", "/")
    token = share_of(sites, "secret.example")
    answer = client.get(f"/share/{token}/embed")
    assert answer.status_code == 200
    assert "frame-ancestors *" in answer.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in answer.headers
    assert '<dd id="embed-visitors">1</dd>' in answer.text
    assert f'href="http://localhost/share/{token}"' in answer.text
    with sites.app_context(), db.engine.begin() as connection:
        connection.execute(sa.delete(ShareLink))
    answer = client.get(f"/share/{token}/embed")
    assert answer.status_code == 404 and answer.headers["X-Frame-Options"] == "DENY"


def test_the_settings_page_offers_the_embed_code_for_a_public_site_only(sites, owner):
    public = owner.get("/sites/open.example").text
    assert "&lt;iframe src=&#34;http://localhost/embed/open.example&#34;" in public
    assert 'class="embed-preview" src="http://localhost/embed/open.example"' in public
    assert 'class="badge public-badge"' in public
    private = owner.get("/sites/secret.example").text
    assert "/embed/secret.example" not in private and "make a share link above" in private


def test_the_dashboard_shows_a_public_badge_and_the_owners_share_links(sites, owner):
    html = owner.get("/?site=open.example").text
    assert 'class="badge public-badge"' in html
    assert (
        'href="/sites/open.example#embed"' in html and 'href="/sites/open.example#sharing"' in html
    )
    html = owner.get("/?site=secret.example").text
    assert 'class="badge public-badge"' not in html and ">private</span>" in html
    assert "#embed" not in html
    anonymous = sites.test_client().get("/?site=open.example").text
    assert 'class="badge public-badge"' in anonymous and "/sites/open.example" not in anonymous


# ---- verify installation -------------------------------------------------------------


def test_verify_says_whether_a_hit_has_arrived(sites, owner, client):
    json = {"Accept": "application/json"}
    before = owner.get("/sites/secret.example/verify", headers=json)
    assert before.status_code == 200 and before.headers["Cache-Control"] == "no-store"
    assert before.get_json() == {
        "site": "secret.example",
        "arrived": False,
        "bots_only": False,
        "last_hit": None,
        "message": before.get_json()["message"],
    }
    assert "No hit from secret.example has arrived yet" in before.get_json()["message"]
    hit(sites.test_client(), "other.example")  # another site's hit does not count
    assert owner.get("/sites/secret.example/verify", headers=json).get_json()["arrived"] is False
    bot = {"dl": "https://secret.example/", "cid": "b1"}
    crawler = {"User-Agent": "curl/8.5.0"}
    assert sites.test_client().post("/visit", json=bot, headers=crawler).status_code == 204
    bots = owner.get("/sites/secret.example/verify", headers=json).get_json()
    assert (bots["arrived"], bots["bots_only"]) == (True, True)
    assert "from a bot or a script" in bots["message"]
    hit(sites.test_client(), "secret.example")
    after = owner.get("/sites/secret.example/verify", headers=json).get_json()
    assert after["bots_only"] is False
    assert after["arrived"] is True
    assert after["last_hit"] == NOW.isoformat() + "Z"
    assert "It works" in after["message"]


def test_verify_without_javascript_flashes_the_answer_on_the_settings_page(sites, owner):
    # the dashboard's waiting card and the settings page carry the button
    assert 'action="/sites/secret.example/verify"' in owner.get("/?site=secret.example").text
    assert 'id="verify-button"' in owner.get("/sites/secret.example").text
    answer = owner.get("/sites/secret.example/verify", headers={"Accept": "text/html"})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/sites/secret.example#installation")
    assert "No hit from secret.example" in owner.get("/sites/secret.example").text


def test_verify_needs_a_login_and_a_known_site(sites, owner):
    anonymous = sites.test_client()
    json = {"Accept": "application/json"}
    answer = anonymous.get("/sites/secret.example/verify", headers=json)
    assert answer.status_code == 401 and answer.get_json()["error"]
    assert anonymous.get("/sites/secret.example/verify").status_code == 302
    answer = owner.get("/sites/nowhere.example/verify", headers=json)
    assert (
        answer.status_code == 404 and answer.get_json()["error"] == "no such site: nowhere.example"
    )
    assert owner.get("/sites/nowhere.example/verify").status_code == 404


# ---- the table's migration -------------------------------------------------------------


def test_a_database_from_before_share_links_is_upgraded(other_database_url, tmp_path):
    settings = upgrades.config(other_database_url, tmp_path)
    old = create_app(settings)
    ensure_schema(old)
    with old.app_context():
        with db.engine.begin() as connection:
            add_site(connection, "shop.example")
            connection.exec_driver_sql("DROP TABLE share_links")
            upgrades.rewind(connection, _share_links)
        assert "share_links" not in sa.inspect(db.engine).get_table_names()
    upgrades.close(old)

    upgraded = upgrades.upgraded(settings)
    with upgraded.app_context():
        with db.engine.begin() as connection:
            _share_links(connection)  # again: a branch merge may replay it
            site = find_site(connection, "shop.example")
            link = create_share(connection, site, "board")
        with db.engine.connect() as connection:
            assert site_for_token(connection, link.token) == site
            assert [s.label for s in list_shares(connection, site)] == ["board"]
    upgrades.close(upgraded)
