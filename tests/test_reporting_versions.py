"""Versions on demand: the browsers and operating_systems reports with versions=on, on every
database; the OS version comes from the hit's User-Agent."""

from __future__ import annotations

import datetime as dt

import pytest

from crumby import ingest
from crumby.extensions import db
from crumby.sites import add_site
from tests.test_reporting_api import make_app

NOW = dt.datetime(2026, 11, 20, 12, 0)
#: (visitor, browser, version): two Chrome versions, one Firefox, a visitor seen on both Chromes
VIEWS = [
    ("a", "Chrome", "131.0"),
    ("a", "Chrome", "131.0"),
    ("b", "Chrome", "131.0"),
    ("c", "Chrome", "130.0"),
    ("a", "Chrome", "130.0"),
    ("d", "Firefox", "133.0"),
    ("e", None, None),
]


@pytest.fixture
def client(app, database_url, tmp_path):
    with app.app_context(), db.engine.begin() as connection:
        site = add_site(connection, "versions.example", "UTC", public=True)
    start = NOW - dt.timedelta(hours=3)
    ingest.store(
        app,
        [
            {
                "site_id": site.id,
                "cid": cid,
                "browser": browser,
                "version": version,
                "datetime": start + dt.timedelta(minutes=n),
                "doc_uri": "https://versions.example/",
            }
            for n, (cid, browser, version) in enumerate(VIEWS)
        ],
    )
    return make_app(database_url, tmp_path, now=NOW).test_client()


def rows(client, **args):
    response = client.get(
        "/api/public/browsers", query_string={"site": "versions.example", "days": 1, **args}
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return body["columns"], [tuple(row) for row in body["data"]]


def test_browsers_count_visitors_per_browser_by_default(client):
    columns, data = rows(client)
    assert columns == ["browser", "visitors"]
    assert data == [("Chrome", 3), ("(unknown)", 1), ("Firefox", 1)]
    assert rows(client, versions="off") == (columns, data)


def test_versions_on_splits_each_browser_by_version(client):
    columns, data = rows(client, versions="on")
    assert columns == ["browser", "version", "visitors"]
    # visitor a used both Chrome versions: counted once in each
    assert data == [
        ("Chrome", "130.0", 2),
        ("Chrome", "131.0", 2),
        ("(unknown)", "", 1),
        ("Firefox", "133.0", 1),
    ]
    # the browser filter still narrows to one browser, every version of it
    _, chrome = rows(client, versions="on", browser="Chrome")
    assert chrome == [("Chrome", "130.0", 2), ("Chrome", "131.0", 2)]


@pytest.mark.parametrize("bad", ["yes", "ON", " "])
def test_an_unknown_versions_value_is_400_naming_it(client, bad):
    response = client.get(
        "/api/public/browsers",
        query_string={"site": "versions.example", "days": 1, "versions": bad},
    )
    assert response.status_code == 400
    assert response.get_json()["parameter"] == "versions"


def test_the_dashboard_card_offers_versions_as_a_choice(client):
    page = client.get("/?site=versions.example").get_data(as_text=True)
    assert 'data-param="versions"' in page
    assert '<option value="on">on</option>' in page


IPHONE_17 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
IPHONE_18 = IPHONE_17.replace("17_1", "18_1").replace("Version/17.1", "Version/18.1")
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36"
)


def test_operating_system_versions_come_from_the_hits_user_agent(client):
    hits = [("p", IPHONE_17), ("q", IPHONE_18), ("r", IPHONE_18), ("s", WINDOWS)]
    for cid, ua in hits:
        answer = client.post(
            "/visit",
            json={"dl": "https://versions.example/os", "cid": cid},
            headers={"User-Agent": ua},
        )
        assert answer.status_code == 204
    columns, data = rows_of(client, "operating_systems", versions="on", os="iOS")
    assert columns == ["os", "version", "visitors"]
    assert data == [("iOS", "18.1", 2), ("iOS", "17.1", 1)]
    columns, data = rows_of(client, "operating_systems", os="Windows")
    assert (columns, data) == (["os", "visitors"], [("Windows", 1)])
    # the views stored without one (the seeded ones) show an empty version
    _, every = rows_of(client, "operating_systems", versions="on")
    assert ("(unknown)", "", 5) in every  # visitors a to e


def rows_of(client, report, **args):
    response = client.get(
        f"/api/public/{report}", query_string={"site": "versions.example", "days": 1, **args}
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return body["columns"], [tuple(row) for row in body["data"]]
