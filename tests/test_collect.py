"""/collect, /batch and /debug/collect: Measurement Protocol hits make /visit and /event rows."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from crumby import accounts, clock
from crumby.extensions import db
from crumby.ingest import counters_for
from crumby.models import Event, Visit
from crumby.sites import add_site
from crumby.tracking.endpoint import PIXEL

NOW = dt.datetime(2026, 3, 10, 12, 0, 0)
SHOP = "shop.example"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"
SERVER_UA = "python-requests/2.31.0"
BROWSER = {
    "User-Agent": CHROME,
    "Referer": "https://shop.example/products/tea",
    "Accept-Language": "en-GB,en;q=0.8",
}
ADDRESS = {"REMOTE_ADDR": "198.51.100.7"}
PAGE = "https://shop.example/products/tea?utm_source=news&utm_medium=email&x=1"

PAGEVIEW = {
    "v": "1",
    "t": "pageview",
    "tid": SHOP,
    "cid": "35009a79-1a05-49d7-b876-2b884d0f825b",
    "dl": PAGE,
    "dt": "Green tea",
    "dr": "https://search.example/?q=tea",
    "ul": "en-gb",
    "sr": "1920x1080",
    "sd": "24-bits",
    "de": "UTF-8",
}
#: the /visit hit that means the same
VISIT = {
    "site": SHOP,
    "cid": PAGEVIEW["cid"],
    "dl": PAGE,
    "dt": "Green tea",
    "dr": "https://search.example/?q=tea",
    "ul": "en-gb",
    "sr": "1920x1080",
    "sd": "24-bits",
    "de": "UTF-8",
}
EVENT = {
    "v": "1",
    "t": "event",
    "tid": SHOP,
    "cid": PAGEVIEW["cid"],
    "ec": "Video",
    "ea": "play",
    "el": "intro.mp4",
    "ev": "42",
    "dl": PAGE,
    "dt": "Green tea",
}
#: the /event hit that means the same
EVENT_HIT = {
    "site": SHOP,
    "cid": PAGEVIEW["cid"],
    "en": "Video / play",
    "ev": "intro.mp4",
    "dl": PAGE,
    "dt": "Green tea",
}


@pytest.fixture
def shop(app) -> int:
    clock.pin(app, NOW)
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, "other.example")
        return add_site(connection, SHOP).id


def rows(app, model) -> list[dict]:
    """Every stored row of a table as {column: value}, without the id."""
    table = model.__table__
    with app.app_context(), db.engine.connect() as connection:
        found = connection.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    return [{k: v for k, v in row.items() if k != "id"} for row in found]


def clear(app) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.delete(Visit.__table__))
        connection.execute(sa.delete(Event.__table__))


def send(client, form: str, path: str, params: dict, headers=None, environ=None):
    """One hit in one of the forms a Measurement Protocol client uses."""
    headers = {**BROWSER, **(headers or {})}
    environ = {**ADDRESS, **(environ or {})}
    body = urlencode(params)
    if form == "get":
        return client.get(f"{path}?{body}", headers=headers, environ_base=environ)
    if form == "post":
        return client.post(
            path,
            data=body,
            content_type="application/x-www-form-urlencoded",
            headers=headers,
            environ_base=environ,
        )
    if form == "post-text":
        return client.post(
            path, data=body, content_type="text/plain", headers=headers, environ_base=environ
        )
    if form == "batch":
        return client.post(
            "/batch",
            data=body + "\n",
            content_type="text/plain",
            headers=headers,
            environ_base=environ,
        )
    raise AssertionError(form)


def assert_gif(answer) -> None:
    assert answer.status_code == 200
    assert answer.mimetype == "image/gif"
    assert answer.data == PIXEL
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "no-store" in answer.headers["Cache-Control"]


def reference(app, client, path: str, params: dict, **kw) -> dict:
    """The row a /visit or /event hit stores, the tables emptied again afterwards."""
    model = Visit if path == "/visit" else Event
    answer = send(client, "get", path, params, **kw)
    assert answer.status_code == 200
    [row] = rows(app, model)
    clear(app)
    return row


FORMS = ("get", "post", "post-text", "batch")


# --- the same rows as /visit and /event ---------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_a_pageview_makes_the_row_of_the_same_visit(app, client, shop, form):
    expected = reference(app, client, "/visit", VISIT)
    assert expected["site_id"] == shop and expected["utm_source"] == "news"
    answer = send(client, form, "/collect", PAGEVIEW)
    assert_gif(answer)
    assert rows(app, Visit) == [expected]
    assert rows(app, Event) == []


@pytest.mark.parametrize("form", FORMS)
def test_an_event_makes_the_row_of_the_same_event(app, client, shop, form):
    expected = reference(app, client, "/event", EVENT_HIT)
    assert (expected["name"], expected["value"]) == ("Video / play", "intro.mp4")
    assert_gif(send(client, form, "/collect", EVENT))
    assert rows(app, Event) == [expected]
    assert rows(app, Visit) == []


@pytest.mark.parametrize(
    ("hit", "equivalent"),
    [
        # dh + dp instead of dl
        (
            {"dl": None, "dh": "shop.example", "dp": "/products/tea?x=1"},
            {"dl": "https://shop.example/products/tea?x=1"},
        ),
        # dp alone: the host is tid's
        ({"dl": None, "dp": "/about"}, {"dl": "https://shop.example/about"}),
        # dp replaces the path of dl
        ({"dp": "/cart"}, {"dl": "https://shop.example/cart"}),
        # no cid: the anonymous daily id, as /visit makes it
        ({"cid": None}, {"cid": None}),
        # uid stands in for cid
        ({"cid": None, "uid": "user-9"}, {"cid": "user-9"}),
        # parameters Crumby ignores change nothing
        ({"qt": "5000", "z": "12345", "aip": "1", "ni": "1", "cd1": "x", "ds": "app"}, {}),
    ],
)
def test_page_and_visitor_parameters(app, client, shop, hit, equivalent):
    visit = {k: v for k, v in {**VISIT, **equivalent}.items() if v is not None}
    expected = reference(app, client, "/visit", visit)
    params = {k: v for k, v in {**PAGEVIEW, **hit}.items() if v is not None}
    assert_gif(send(client, "get", "/collect", params))
    assert rows(app, Visit) == [expected]


def test_campaign_parameters_fill_the_utm_columns(app, client, shop):
    params = {**PAGEVIEW, "cs": "spring", "cm": "cpc", "cn": "sale", "ck": "tea", "cc": "ad-2"}
    send(client, "get", "/collect", params)
    [row] = rows(app, Visit)
    assert (
        row["utm_source"],
        row["utm_medium"],
        row["utm_campaign"],
        row["utm_term"],
        row["utm_content"],
    ) == ("spring", "cpc", "sale", "tea", "ad-2")


def test_an_event_without_a_label_keeps_its_value_and_one_without_either_has_none(
    app, client, shop
):
    send(client, "get", "/collect", {**EVENT, "el": ""})
    send(client, "get", "/collect", {k: v for k, v in EVENT.items() if k not in ("el", "ev")})
    assert [(r["name"], r["value"]) for r in rows(app, Event)] == [
        ("Video / play", "42"),
        ("Video / play", None),
    ]


def test_a_batch_stores_every_hit_and_answers_once(app, client, shop):
    lines = [urlencode({**PAGEVIEW, "dp": f"/p{i}"}) for i in range(19)] + [urlencode(EVENT)]
    answer = client.post(
        "/batch", data="\r\n".join(lines) + "\n\n", headers=BROWSER, environ_base=ADDRESS
    )
    assert_gif(answer)
    assert sorted(r["doc_path"] for r in rows(app, Visit)) == sorted(f"/p{i}" for i in range(19))
    assert [r["name"] for r in rows(app, Event)] == ["Video / play"]
    # one visitor's views at one moment make one session
    assert {r["session_start"] for r in rows(app, Visit)} == {NOW}


def test_a_batch_of_more_than_20_hits_is_refused_whole(app, client, shop):
    answer = client.post("/batch", data="\n".join([urlencode(PAGEVIEW)] * 21))
    assert answer.status_code == 413
    assert "at most 20 hits" in answer.get_json()["error"]
    assert rows(app, Visit) == []


def test_a_bad_line_in_a_batch_costs_only_itself(app, client, shop):
    before = counters_for(app).snapshot()[1].get("malformed", 0)
    lines = [urlencode(PAGEVIEW), "v=1&t=pageview", "%ff%fe=\xff", urlencode(EVENT)]
    assert_gif(client.post("/batch", data="\n".join(lines).encode("latin-1")))
    assert len(rows(app, Visit)) == 1 and len(rows(app, Event)) == 1
    assert counters_for(app).snapshot()[1]["malformed"] - before == 2


def test_batch_size_limits(app, client, shop):
    app.config["HIT_MAX_BYTES"] = 600
    long_line = urlencode({**PAGEVIEW, "dt": "x" * 400})  # 659 bytes
    assert_gif(client.post("/batch", data=long_line + "\n" + urlencode(PAGEVIEW)))
    assert len(rows(app, Visit)) == 1  # the long line alone is dropped
    answer = client.post("/batch", data="\n".join([urlencode(PAGEVIEW)] * 5))  # 1344 bytes
    assert answer.status_code == 413
    assert len(rows(app, Visit)) == 1


def test_batch_takes_post_only(client, shop):
    answer = client.get("/batch?" + urlencode(PAGEVIEW))
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST, OPTIONS"


# --- the site is tid's -----------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_an_unknown_tid_is_answered_as_usual_and_not_stored(app, client, shop, form):
    before = counters_for(app).snapshot()[1].get("unknown_site", 0)
    for hit in (PAGEVIEW, EVENT):
        # the page is on a registered site, but tid names the site: no guessing
        assert_gif(send(client, form, "/collect", {**hit, "tid": "UA-12345-1"}))
    assert rows(app, Visit) == [] and rows(app, Event) == []
    assert counters_for(app).snapshot()[1]["unknown_site"] - before == 2


def test_tid_wins_over_the_page_host(app, client, shop):
    send(client, "get", "/collect", {**PAGEVIEW, "tid": "www.shop.example"})
    send(client, "get", "/collect", {**PAGEVIEW, "dl": "https://staging.other.example/"})
    assert [r["site_id"] for r in rows(app, Visit)] == [shop, shop]


# --- overrides only from an authenticated sender ---------------------------------------------


@pytest.fixture
def tokens(app, shop) -> dict[str, str]:
    with app.app_context():
        accounts.add_user("srv", "a long password")
        return {
            "full": accounts.create_token("srv"),
            "shop": accounts.create_token("srv", site=SHOP, ingest_only=True),
            "other": accounts.create_token("srv", site="other.example"),
        }


SERVER = {"User-Agent": SERVER_UA, "Referer": "", "Accept-Language": ""}
OVERRIDES = {"uip": "203.0.113.45", "ua": FIREFOX_ANDROID}


@pytest.mark.parametrize("form", FORMS)
def test_uip_and_ua_are_ignored_without_a_token(app, client, tokens, form):
    for headers in ({}, {"Authorization": "Bearer cmb_wrong"}, {"Authorization": "Basic eDp5"}):
        send(client, form, "/collect", {**PAGEVIEW, **OVERRIDES}, headers={**SERVER, **headers})
        send(client, form, "/collect", {**EVENT, **OVERRIDES}, headers={**SERVER, **headers})
    for row in rows(app, Visit):
        assert row["ip"] == "198.51.100.0"  # the sender's own address
        assert row["browser"] == "Python Requests" and row["is_bot"] is True
    for row in rows(app, Event):
        assert row["ip"] == "198.51.100.0" and row["is_bot"] is True
    # a token for another site does not vouch for this one's hits
    send(
        client,
        form,
        "/collect",
        {**PAGEVIEW, **OVERRIDES},
        headers={**SERVER, "Authorization": f"Bearer {tokens['other']}"},
    )
    assert rows(app, Visit)[-1]["ip"] == "198.51.100.0"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("token", ["full", "shop"])
def test_uip_and_ua_are_used_with_a_token(app, client, tokens, form, token):
    """A server sending for its visitors makes the rows the visitor's browser would have."""
    auth = {**SERVER, "Authorization": f"Bearer {tokens[token]}"}
    browser = {"User-Agent": FIREFOX_ANDROID, "Referer": "", "Accept-Language": ""}
    anonymous = {k: v for k, v in PAGEVIEW.items() if k != "cid"}
    seen = {"headers": browser, "environ": {"REMOTE_ADDR": "203.0.113.45"}}
    expected = [
        reference(app, client, "/visit", VISIT, **seen),
        reference(app, client, "/visit", {k: v for k, v in VISIT.items() if k != "cid"}, **seen),
    ]
    # the event falls in the session of the page view before it, and carries its attributes
    send(client, "get", "/visit", VISIT, **seen)
    expected_event = reference(app, client, "/event", EVENT_HIT, **seen)
    assert expected_event["entry_source"] == "search.example"
    assert expected[0]["ip"] == "203.0.113.0" and expected[0]["browser"] == "Firefox Mobile"
    assert expected[0]["is_bot"] is False and expected[1]["cid"].startswith("anon-")
    send(client, form, "/collect", {**PAGEVIEW, **OVERRIDES}, headers=auth)
    send(client, form, "/collect", {**anonymous, **OVERRIDES}, headers=auth)
    send(client, form, "/collect", {**EVENT, **OVERRIDES}, headers=auth)
    assert rows(app, Visit) == expected
    assert rows(app, Event) == [expected_event]


def test_an_override_that_is_no_address_drops_the_hit(app, client, tokens):
    auth = {"Authorization": f"Bearer {tokens['full']}"}
    assert_gif(send(client, "get", "/collect", {**PAGEVIEW, "uip": "not-an-ip"}, headers=auth))
    assert rows(app, Visit) == []
    # ua alone is fine
    send(client, "get", "/collect", {**PAGEVIEW, "ua": FIREFOX_ANDROID}, headers=auth)
    [row] = rows(app, Visit)
    assert row["ip"] == "198.51.100.0" and row["browser"] == "Firefox Mobile"


# --- what is not stored, and how it is answered ------------------------------------------------

MALFORMED = [
    {k: v for k, v in PAGEVIEW.items() if k != "v"},
    {**PAGEVIEW, "v": "2"},
    {k: v for k, v in PAGEVIEW.items() if k != "tid"},
    {k: v for k, v in PAGEVIEW.items() if k != "t"},
    {k: v for k, v in PAGEVIEW.items() if k != "dl"},
    {**PAGEVIEW, "dl": "not a url"},
    {**PAGEVIEW, "sr": "big"},
    {**PAGEVIEW, "sd": "deep"},
    {**PAGEVIEW, "dl": "", "dp": "/x", "dh": "bad host/"},
    {k: v for k, v in EVENT.items() if k != "ec"},
    {k: v for k, v in EVENT.items() if k != "ea"},
    {**EVENT, "ev": "-3"},
    {**EVENT, "ev": "1.5"},
]


@pytest.mark.parametrize("form", FORMS)
def test_malformed_hits_are_answered_as_usual_counted_and_not_stored(app, client, shop, form):
    before = counters_for(app).snapshot()[1].get("malformed", 0)
    for hit in MALFORMED:
        assert_gif(send(client, form, "/collect", hit))
    assert rows(app, Visit) == [] and rows(app, Event) == []
    assert counters_for(app).snapshot()[1]["malformed"] - before == len(MALFORMED)


def test_unparsable_bodies_are_answered_as_usual(app, client, shop):
    for data, kind in (
        (b"\xff\xfe", "text/plain"),
        (b"{not json", "application/json"),
        (b"--x\r\n", "multipart/form-data; boundary=x"),
    ):
        assert_gif(client.post("/collect", data=data, content_type=kind))
    assert rows(app, Visit) == []


@pytest.mark.parametrize("hit_type", ["screenview", "transaction", "item", "social", "timing"])
def test_other_hit_types_are_answered_and_counted_as_unsupported(app, client, shop, hit_type):
    before = counters_for(app).snapshot()[1].get("unsupported", 0)
    assert_gif(send(client, "get", "/collect", {**PAGEVIEW, "t": hit_type}))
    assert rows(app, Visit) == [] and rows(app, Event) == []
    assert counters_for(app).snapshot()[1]["unsupported"] - before == 1


def test_http_level_answers(app, client, shop):
    head = client.head("/collect?" + urlencode(PAGEVIEW))
    assert head.status_code == 200 and head.data == b""
    assert rows(app, Visit) == []  # HEAD records nothing
    preflight = client.options("/collect", headers={"Origin": "https://shop.example"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    put = client.put("/collect", data=urlencode(PAGEVIEW))
    assert put.status_code == 405 and "error" in put.get_json()
    app.config["HIT_MAX_BYTES"] = 100
    assert client.get("/collect?" + urlencode(PAGEVIEW)).status_code == 413
    assert rows(app, Visit) == []


# --- /debug/collect ------------------------------------------------------------------------------


def test_debug_collect_says_what_would_happen_and_stores_nothing(app, client, shop):
    good = client.get("/debug/collect?" + urlencode(PAGEVIEW)).get_json()
    assert good["hitParsingResult"][0]["valid"] is True
    assert good["hitParsingResult"][0]["parserMessage"] == []
    unknown = client.post("/debug/collect", data=urlencode({**EVENT, "tid": "UA-1-1"})).get_json()
    [result] = unknown["hitParsingResult"]
    assert result["valid"] is False
    assert result["parserMessage"][0]["parameter"] == "tid"
    bad = client.get("/debug/collect?" + urlencode({**PAGEVIEW, "sr": "big"})).get_json()
    assert bad["hitParsingResult"][0]["parserMessage"][0]["parameter"] == "sr"
    other = client.get("/debug/collect?" + urlencode({**PAGEVIEW, "t": "timing"})).get_json()
    assert "not stored" in other["hitParsingResult"][0]["parserMessage"][0]["description"]
    assert rows(app, Visit) == [] and rows(app, Event) == []
