"""What the server adds to a hit: address, agent, bot flag, privacy settings, campaigns."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crumby import clock
from crumby.extensions import db
from crumby.ingest.salts import anonymous_id
from crumby.models import Event, Visit
from crumby.sites import add_site
from crumby.tracking.enrich import (
    UA_MAX_LENGTH,
    anonymize_ip,
    client_ip,
    user_agent,
)
from crumby.tracking.hits import utm_params

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
)
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:120.0) Gecko/120.0 Firefox/120.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36"
)
PAGE = "https://blog.example/post"


@pytest.fixture(autouse=True)
def site(app):
    """Hits are stored only for registered sites (contract section 8): register the pages' host."""
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, "blog.example")


# --- client address ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "header", "hops", "expected"),
    [
        ("10.0.0.1", "203.0.113.9", 0, "10.0.0.1"),  # header ignored without trusted proxies
        ("10.0.0.1", "203.0.113.9", 1, "203.0.113.9"),
        ("10.0.0.1", "198.51.100.7, 203.0.113.9", 1, "203.0.113.9"),  # rightmost hop
        ("10.0.0.1", "spoofed, 198.51.100.7, 203.0.113.9", 2, "198.51.100.7"),
        ("10.0.0.1", "203.0.113.9", 2, "10.0.0.1"),  # fewer entries than hops
        ("10.0.0.1", "garbage", 1, "10.0.0.1"),  # malformed: the connection's address
        ("10.0.0.1", ",,,", 1, "10.0.0.1"),
        ("10.0.0.1", "203.0.113.9:4711", 1, "203.0.113.9"),
        ("10.0.0.1", "[2001:db8::1]:443", 1, "2001:db8::1"),
        ("10.0.0.1", " 2001:DB8::2 ", 1, "2001:db8::2"),
    ],
)
def test_client_ip_trusts_only_proxy_count_hops_from_the_right(remote, header, hops, expected):
    assert client_ip(remote, header, hops) == expected


def test_forwarded_for_is_used_end_to_end_only_with_proxy_count(app, client):
    app.config["ANONYMIZE_IP"] = False  # the full addresses, to tell them apart
    headers = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    client.post("/visit", json={"dl": PAGE}, headers=headers)
    app.config["PROXY_COUNT"] = 1
    client.post("/visit", json={"dl": PAGE}, headers=headers)
    client.post("/visit", json={"dl": PAGE}, headers={"X-Forwarded-For": "not-an-ip"})
    with app.app_context():
        ips = db.session.scalars(select(Visit.ip).order_by(Visit.id)).all()
    assert ips == ["127.0.0.1", "203.0.113.9", "127.0.0.1"]


# --- user agents and bots ----------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "platform", "browser", "version", "device", "os_version"),
    [
        (CHROME, "Windows", "Chrome", "121.0", "desktop", "10"),
        (IPHONE, "iOS", "Mobile Safari", "17.1", "mobile", "17.1"),
        (IPAD, "iOS", "Mobile Safari", "16.6", "tablet", "16.6"),
        (FIREFOX_ANDROID, "Android", "Firefox Mobile", "120.0", "mobile", "14"),
    ],
)
def test_user_agent_gives_platform_browser_version_and_device(
    ua, platform, browser, version, device, os_version
):
    agent = user_agent(ua)
    assert (agent.platform, agent.browser, agent.version, agent.device, agent.os_version) == (
        platform,
        browser,
        version,
        device,
        os_version,
    )
    assert agent.is_bot is False


@pytest.mark.parametrize(
    "ua",
    [GOOGLEBOT, BINGBOT, HEADLESS, "curl/8.4.0", "python-requests/2.31.0", "Wget/1.21", ""],
)
def test_bots_crawlers_and_scripts_are_flagged(ua):
    agent = user_agent(ua)
    assert agent.is_bot is True
    assert agent.device == "bot"


def test_user_agent_is_capped_before_parsing():
    huge = CHROME + " " + "x" * 100_000
    agent = user_agent(huge)
    assert agent.browser == "Chrome"
    assert user_agent(huge) is agent  # cached by its capped form
    assert user_agent(CHROME + " " + "x" * (UA_MAX_LENGTH + 5)) is agent


def test_bot_visits_and_events_are_stored_flagged(app, client):
    client.post("/visit", json={"dl": PAGE}, headers={"User-Agent": GOOGLEBOT})
    client.post("/visit", json={"dl": PAGE}, headers={"User-Agent": CHROME})
    client.post("/event", json={"en": "click", "dl": PAGE}, headers={"User-Agent": "curl/8.4.0"})
    with app.app_context():
        flags = db.session.scalars(select(Visit.is_bot).order_by(Visit.id)).all()
        event_flags = db.session.scalars(select(Event.is_bot)).all()
        bot = db.session.scalars(select(Visit).where(Visit.is_bot.is_(True))).one()
        assert bot.browser == "Googlebot"
        assert bot.device == "bot"
    assert flags == [True, False]
    assert event_flags == [True]


# --- campaigns ---------------------------------------------------------------------


def test_utm_parameters_come_from_the_page_url(app, client):
    url = (
        "https://blog.example/?utm_source=mastodon&utm_medium=social&utm_campaign=launch"
        "&utm_term=analytics&utm_content=banner&utm_source=ignored"
    )
    assert utm_params(url) == {
        "utm_source": "mastodon",
        "utm_medium": "social",
        "utm_campaign": "launch",
        "utm_term": "analytics",
        "utm_content": "banner",
    }
    assert utm_params("https://blog.example/?q=utm_source") == {}
    client.post("/visit", json={"dl": url})
    with app.app_context():
        visit = db.session.scalars(select(Visit)).one()
        assert (visit.utm_source, visit.utm_campaign, visit.utm_content) == (
            "mastodon",
            "launch",
            "banner",
        )


# --- privacy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "anonymized"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:1234:5678::1", "2001:db8:abcd::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),
        (None, None),
        ("nonsense", None),
    ],
)
def test_anonymize_ip_keeps_only_the_network(ip, anonymized):
    assert anonymize_ip(ip) == anonymized


def test_addresses_are_cut_to_their_network_by_default(app, client):
    assert app.config["ANONYMIZE_IP"] is True  # contract sections 2 and 11
    app.config["PROXY_COUNT"] = 1
    for address in ("203.0.113.77", "2001:db8:abcd:1234:5678::1"):
        headers = {"X-Forwarded-For": address}
        assert client.post("/visit", json={"dl": PAGE}, headers=headers).status_code == 204
        event = {"en": "x", "dl": PAGE}
        assert client.post("/event", json=event, headers=headers).status_code == 204
    with app.app_context():
        visit_ips = db.session.scalars(select(Visit.ip).order_by(Visit.id)).all()
        event_ips = db.session.scalars(select(Event.ip).order_by(Event.id)).all()
    assert visit_ips == event_ips == ["203.0.113.0", "2001:db8:abcd::"]


def test_ip_anonymisation_happens_after_geolocation(app, client, tmp_path):
    from tests.mmdb_factory import write_city_database

    app.config["GEOIP2_DATABASE_NAME"] = str(write_city_database(tmp_path / "city.mmdb"))
    app.config["ANONYMIZE_IP"] = True
    app.config["PROXY_COUNT"] = 1
    client.post("/visit", json={"dl": PAGE}, headers={"X-Forwarded-For": "81.2.69.160"})
    client.post("/event", json={"en": "x", "dl": PAGE}, headers={"X-Forwarded-For": "81.2.69.160"})
    with app.app_context():
        visit = db.session.scalars(select(Visit)).one()
        event = db.session.scalars(select(Event)).one()
    assert visit.ip == "81.2.69.0"
    assert visit.city == "London"  # located from the full address
    assert event.ip == "81.2.69.0"


def test_anonymous_id_depends_on_salt_site_address_and_browser():
    first = anonymous_id(b"salt", 1, "203.0.113.7", CHROME)
    assert first == anonymous_id(b"salt", 1, "203.0.113.7", CHROME)
    assert first.startswith("anon-") and len(first) == 37
    assert "203.0.113.7" not in first
    assert first != anonymous_id(b"next-day-salt", 1, "203.0.113.7", CHROME)
    assert first != anonymous_id(b"salt", 2, "203.0.113.7", CHROME)
    assert first != anonymous_id(b"salt", 1, "203.0.113.8", CHROME)
    assert first != anonymous_id(b"salt", 1, "203.0.113.7", IPHONE)


def test_hits_without_cid_share_a_daily_anonymous_id(app, client):
    clock.pin(app, dt.datetime(2026, 11, 23, 23, 59, 58))  # the id is per UTC day
    headers = {"User-Agent": CHROME}
    client.post("/visit", json={"dl": PAGE}, headers=headers)
    client.post("/event", json={"en": "play", "dl": PAGE}, headers=headers)
    client.post("/visit", json={"dl": PAGE}, headers={"User-Agent": IPHONE})
    client.post("/visit", json={"dl": PAGE, "cid": "from-cookie"}, headers=headers)
    clock.pin(app, dt.datetime(2026, 11, 24, 0, 0, 1))  # the same browser, the next day
    client.post("/visit", json={"dl": PAGE}, headers=headers)
    with app.app_context():
        cids = db.session.scalars(select(Visit.cid).order_by(Visit.id)).all()
        event_cid = db.session.scalars(select(Event.cid)).one()
    assert cids[0].startswith("anon-")
    assert event_cid == cids[0]
    assert cids[1].startswith("anon-") and cids[1] != cids[0]
    assert cids[2] == "from-cookie"
    assert cids[3].startswith("anon-") and cids[3] != cids[0]
