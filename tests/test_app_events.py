"""POST /api/events: app events in batches, with tokens limited to a site or to ingesting."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from crumby import accounts, appevents, clock, create_app, ingest
from crumby.cli import cli
from crumby.database import _v5_token_scopes, ensure_schema
from crumby.extensions import db
from crumby.ingest import counters_for
from crumby.models import ApiToken, Event
from crumby.sites import add_site, delete_site, find_site
from tests import upgrades

NOW = dt.datetime(2026, 3, 10, 12, 0, 0)
SHOP = "shop.example"
BLOG = "blog.example"


@pytest.fixture
def sites(app) -> dict[str, int]:
    """Two private sites; their ids by host."""
    clock.pin(app, NOW)
    with app.app_context(), db.engine.begin() as connection:
        return {host: add_site(connection, host).id for host in (SHOP, BLOG)}


@pytest.fixture
def tokens(app, sites) -> dict[str, str]:
    """Tokens of user ann: without limits, for the shop only, and ingest-only for the shop."""
    with app.app_context():
        accounts.add_user("ann", "a long password")
        return {
            "full": accounts.create_token("ann"),
            "shop": accounts.create_token("ann", site=SHOP),
            "ingest": accounts.create_token("ann", site=SHOP, ingest_only=True),
            "ingest_any": accounts.create_token("ann", ingest_only=True),
        }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored(app) -> list[Event]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Event).order_by(Event.datetime, Event.id)).all()
        db.session.expunge_all()
        return list(rows)


def count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Event))


def post(client, token: str | None, items, site: str | None = SHOP):
    url = "/api/events" + (f"?site={site}" if site else "")
    return client.post(url, json=items, headers=bearer(token) if token else {})


# --- authentication and token scopes -----------------------------------------------------


def test_without_a_valid_token_nothing_is_stored_and_the_answer_is_401(client, app, tokens):
    for headers in ({}, bearer("cmb_not-a-token"), {"Authorization": "Basic YW5uOng="}):
        answer = client.post("/api/events?site=shop.example", json=[{"name": "a"}], headers=headers)
        assert answer.status_code == 401
        assert "Bearer" in answer.get_json()["error"]
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert count(app) == 0


def test_a_logged_in_session_is_not_enough(client, app, tokens):
    form = client.get("/login").text
    from tests.auth.conftest import csrf_token

    client.post(
        "/login",
        data={"username": "ann", "password": "a long password", "csrf_token": csrf_token(form)},
    )
    assert client.get("/api/private", headers={}).status_code == 200  # logged in
    assert post(client, None, [{"name": "a"}]).status_code == 401
    assert count(app) == 0


def test_an_ingest_only_token_sends_events_but_reads_no_report(client, app, tokens):
    assert post(client, tokens["ingest"], [{"name": "signup"}]).get_json() == {"stored": 1}
    assert post(client, tokens["ingest_any"], [{"name": "post"}], site=BLOG).status_code == 200
    with app.app_context(), db.engine.begin() as connection:
        from crumby.sites import change_site

        change_site(connection, SHOP, public=True)
    for token in (tokens["ingest"], tokens["ingest_any"]):
        for path in (
            "/api/private",
            "/api/private/events?site=shop.example",
            "/api/public/visits?site=shop.example",  # public site, public report: still no
            "/api/public/visits?site=blog.example",
            "/api/public",
        ):
            answer = client.get(path, headers=bearer(token))
            assert answer.status_code == 403, path
            assert answer.mimetype == "application/json"
            assert "ingest-only" in answer.get_json()["error"]
    # the same report without the token is open (the site is public)
    assert client.get("/api/public/visits?site=shop.example").status_code == 200
    # and a token without limits reads the events sent
    answer = client.get("/api/private/events?site=shop.example", headers=bearer(tokens["full"]))
    assert answer.status_code == 200
    assert [row[0] for row in answer.get_json()["data"]] == ["signup"]


def test_a_site_token_sends_and_reads_only_its_site(client, app, sites, tokens):
    for token in (tokens["shop"], tokens["ingest"]):
        answer = post(client, token, [{"name": "elsewhere"}], site=BLOG)
        assert answer.status_code == 403
        assert answer.get_json()["error"] == "this API token is limited to the site shop.example"
    assert count(app) == 0
    # without ?site= it sends to its own site, though two sites exist
    assert post(client, tokens["shop"], [{"name": "mine"}], site=None).get_json() == {"stored": 1}
    # www. folds to the registered host
    assert (
        post(client, tokens["shop"], [{"name": "www"}], site="www.shop.example").status_code == 200
    )
    assert {(e.site_id, e.name) for e in stored(app)} == {
        (sites[SHOP], "mine"),
        (sites[SHOP], "www"),
    }
    # reading: its site, with or without ?site=, private reports included
    for path in ("/api/private/events?site=shop.example", "/api/private/events"):
        answer = client.get(path, headers=bearer(tokens["shop"]))
        assert answer.status_code == 200
        assert answer.get_json()["site"] == SHOP
        assert {row[0] for row in answer.get_json()["data"]} == {"mine", "www"}
    assert client.get("/api/private", headers=bearer(tokens["shop"])).status_code == 200
    for path in ("/api/private/events?site=blog.example", "/api/public/visits?site=blog.example"):
        answer = client.get(path, headers=bearer(tokens["shop"]))
        assert answer.status_code == 403
        assert "limited to the site shop.example" in answer.get_json()["error"]
    # a token without limits sends anywhere; with two sites it must name one
    assert post(client, tokens["full"], [{"name": "b"}], site=BLOG).status_code == 200
    answer = post(client, tokens["full"], [{"name": "b"}], site=None)
    assert answer.status_code == 400 and "site" in answer.get_json()["error"]
    assert post(client, tokens["full"], [{"name": "b"}], site="nowhere.example").status_code == 404


def test_a_limited_token_is_not_a_login(client, tokens):
    """Only a token without limits opens pages (site administration) as its user."""
    for name in ("shop", "ingest", "ingest_any"):
        answer = client.get("/sites", headers=bearer(tokens[name]))
        assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert client.get("/sites", headers=bearer(tokens["full"])).status_code == 200


def test_deleting_a_site_revokes_the_tokens_limited_to_it(client, app, tokens):
    with app.app_context(), db.engine.begin() as connection:
        delete_site(connection, SHOP)
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, SHOP)  # the same host again (on SQLite perhaps the same id)
    assert post(client, tokens["shop"], [{"name": "a"}]).status_code == 401
    assert post(client, tokens["ingest"], [{"name": "a"}]).status_code == 401
    assert post(client, tokens["full"], [{"name": "a"}]).status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 2


# --- batches: all or nothing -----------------------------------------------------------


def test_a_thousand_events_are_stored_in_one_request(client, app, sites, tokens):
    before = counters_for(app).snapshot()[0].get("events", 0)
    items = [
        {"name": f"e{i % 7}", "value": i, "cid": f"c{i % 50}", "page": f"/p/{i % 3}"}
        for i in range(1000)
    ]
    answer = post(client, tokens["ingest"], items)
    assert answer.status_code == 200
    assert answer.get_json() == {"stored": 1000}
    rows = stored(app)
    assert len(rows) == 1000
    assert {r.site_id for r in rows} == {sites[SHOP]}
    assert sorted(json.loads(r.value) for r in rows) == list(range(1000))
    assert {(r.name, r.cid, r.doc_uri) for r in rows if r.value == "8"} == {("e1", "c8", "/p/2")}
    assert counters_for(app).snapshot()[0]["events"] - before == 1000


def test_a_thousand_and_one_events_are_refused_whole(client, app, tokens):
    answer = post(client, tokens["ingest"], [{"name": "e"}] * 1001)
    assert answer.status_code == 400
    body = answer.get_json()
    assert "at most 1000 events" in body["error"] and body["index"] == 1000
    assert count(app) == 0


BAD_ITEMS = [
    ("not an object", "must be an object"),
    ({}, "name is missing"),
    ({"name": "   "}, "name is missing"),
    ({"name": 5}, "name must be a string"),
    ({"name": "x" * 256}, "name is longer than 255 characters"),
    ({"name": "a", "nmae": "typo"}, "unknown field 'nmae'"),
    ({"name": "a", "cid": 12}, "cid must be a string"),
    ({"name": "a", "cid": "c" * 65}, "cid is longer than 64 characters"),
    ({"name": "a", "page": "checkout"}, "page must be a path starting with /"),
    ({"name": "a", "value": "v" * 1023}, "value is longer than 1024 characters as JSON"),
    ({"name": "a", "datetime": "yesterday"}, "datetime is not ISO 8601"),
    ({"name": "a", "datetime": 1700000000}, "datetime must be an ISO 8601 string"),
    ({"name": "a", "datetime": "2026-03-10T12:05:00Z"}, "is in the future"),
    ({"name": "a", "datetime": "2026-03-03T11:59:59Z"}, "is more than 7 days old"),
]


@pytest.mark.parametrize(("item", "reason"), BAD_ITEMS, ids=[r for _, r in BAD_ITEMS])
def test_one_bad_item_among_999_good_ones_stores_nothing(client, app, tokens, item, reason):
    items = [{"name": "good", "value": i} for i in range(999)]
    items.insert(517, item)
    answer = post(client, tokens["ingest"], items)
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["index"] == 517
    assert body["error"].startswith("item 517: ")
    assert reason in body["error"]
    assert count(app) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"[{", "application/json", "not valid JSON"),
        (b'{"name": "a"}', "application/json", "must be a JSON array"),
        (b'[{"name": "a", "value": NaN}]', "application/json", "not valid JSON"),
        (b"\xff\xfe", "application/json", "not valid JSON"),
        (b"[" * 100_000, "application/json", "not valid JSON"),
        (b"", "application/json", "not valid JSON"),
    ],
)
def test_a_body_that_is_no_batch_is_refused(client, app, tokens, body, content_type, reason):
    answer = client.post(
        "/api/events?site=shop.example",
        data=body,
        content_type=content_type,
        headers=bearer(tokens["ingest"]),
    )
    assert answer.status_code == 400
    assert reason in answer.get_json()["error"]
    assert count(app) == 0


def test_an_empty_batch_stores_nothing_and_says_so(client, tokens):
    assert post(client, tokens["ingest"], []).get_json() == {"stored": 0}


def test_a_text_plain_body_is_read_as_json(client, app, tokens):
    answer = client.post(
        "/api/events?site=shop.example",
        data='[{"name": "beacon"}]',
        content_type="text/plain",
        headers=bearer(tokens["ingest"]),
    )
    assert answer.get_json() == {"stored": 1}
    assert [e.name for e in stored(app)] == ["beacon"]


def test_an_oversized_body_gets_413(client, app, tokens, monkeypatch):
    monkeypatch.setattr(appevents, "MAX_BYTES", 1000)
    answer = post(client, tokens["ingest"], [{"name": "x" * 200}] * 5)
    assert answer.status_code == 413
    assert count(app) == 0


def test_get_is_not_how_events_are_sent(client, tokens):
    answer = client.get("/api/events", headers=bearer(tokens["full"]))
    assert answer.status_code == 405
    assert "POST" in answer.headers["Allow"]
    assert "POST" in answer.get_json()["error"]


def test_the_pipeline_stores_a_batch_in_one_transaction(app, sites):
    """store_all: a row the database refuses takes the whole batch back with it."""
    good = {"site_id": sites[SHOP], "datetime": NOW, "name": "ok", "is_bot": False}
    bad = {"site_id": sites[SHOP], "datetime": NOW, "name": None, "is_bot": False}
    with pytest.raises(sa.exc.IntegrityError):
        ingest.store_all(app, events=[good] * 10 + [bad] + [good] * 10)
    assert count(app) == 0
    assert ingest.store_all(app, events=[good] * 3) == (0, 3)
    assert count(app) == 3


# --- what is stored ------------------------------------------------------------------------

VALUES = [
    {"plan": "pro", "seats": 3, "tags": ["a", "b"], "trial": None},
    [1, "two", 3.5, False, None, {"k": []}],
    42,
    -0.25,
    True,
    False,
    None,
    "pro",
    "42",
    "",
    "Grüße 😀 \u0000 </script>",
]


def test_json_values_round_trip(client, app, sites, tokens):
    items = [{"name": f"v{i}", "value": value} for i, value in enumerate(VALUES)]
    items.append({"name": "no value"})
    assert post(client, tokens["ingest"], items).get_json() == {"stored": len(items)}
    by_name = {e.name: e.value for e in stored(app)}
    for i, value in enumerate(VALUES):
        assert json.loads(by_name[f"v{i}"]) == value
    assert by_name["v7"] == '"pro"' and by_name["v8"] == '"42"' and by_name["v2"] == "42"
    assert by_name["v6"] == "null"  # an explicit null is kept
    assert by_name["no value"] is None  # an absent value is not
    assert by_name["v0"] == '{"plan":"pro","seats":3,"tags":["a","b"],"trial":null}'
    # the events report shows the JSON text
    answer = client.get("/api/private/events?site=shop.example", headers=bearer(tokens["full"]))
    assert ["v7", '"pro"', 1, 0] in answer.get_json()["data"]


def test_a_lone_surrogate_in_a_value_is_kept_as_its_escape(client, app, tokens):
    body = b'[{"name": "s", "value": "a\\ud800b"}]'
    answer = client.post(
        "/api/events?site=shop.example",
        data=body,
        content_type="application/json",
        headers=bearer(tokens["ingest"]),
    )
    assert answer.get_json() == {"stored": 1}
    [event] = stored(app)
    assert json.loads(event.value) == "a\ud800b"


def test_fields_become_columns(client, app, sites, tokens):
    items = [
        {
            "name": "  checkout  ",
            "value": {"total": 12.5},
            "cid": "user-7",
            "page": "/cart?step=2",
            "datetime": "2026-03-10T10:00:00+01:00",
        },
        {"name": "ping"},
    ]
    assert post(client, tokens["ingest"], items).status_code == 200
    first, second = stored(app)
    assert (first.site_id, first.name, first.cid, first.doc_uri) == (
        sites[SHOP],
        "checkout",
        "user-7",
        "/cart?step=2",
    )
    assert first.datetime == dt.datetime(2026, 3, 10, 9, 0)  # the offset turned into UTC
    assert (first.ip, first.doc_title, first.is_bot) == (None, None, False)
    # nothing given: now, no visitor, no page; an HTTP library's User-Agent is no bot here
    assert (second.datetime, second.cid, second.doc_uri, second.value) == (NOW, None, None, None)
    assert second.is_bot is False


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("2026-03-10T12:00:00Z", dt.datetime(2026, 3, 10, 12, 0)),  # now
        ("2026-03-10T12:01:00+00:00", dt.datetime(2026, 3, 10, 12, 1)),  # clock skew allowed
        ("2026-03-10T13:00:30+01:00", dt.datetime(2026, 3, 10, 12, 0, 30)),
        ("2026-03-10T11:30:00", dt.datetime(2026, 3, 10, 11, 30)),  # no offset: UTC
        ("2026-03-03T12:00:00Z", dt.datetime(2026, 3, 3, 12, 0)),  # exactly 7 days old
        ("2026-03-05", dt.datetime(2026, 3, 5)),
    ],
)
def test_datetimes_within_the_bounds_are_stored_in_utc(client, app, tokens, sent, kept):
    assert post(client, tokens["ingest"], [{"name": "t", "datetime": sent}]).status_code == 200
    assert [e.datetime for e in stored(app)] == [kept]


@pytest.mark.parametrize(
    "sent",
    [
        "2026-03-10T12:01:01Z",  # a second past the skew
        "2026-03-11T00:00:00+05:00",  # 19:00 UTC
        "2099-01-01T00:00:00Z",
        "2026-03-03T11:59:59Z",  # 7 days and a second
        "2026-03-03T12:59:59+01:00",
        "2000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_future_and_too_old_datetimes_are_refused(client, app, tokens, sent):
    items = [{"name": "ok"}, {"name": "t", "datetime": sent}]
    answer = post(client, tokens["ingest"], items)
    assert answer.status_code == 400
    assert answer.get_json()["index"] == 1
    assert count(app) == 0


# --- the command line, the docs, the upgrade ------------------------------------------------


def test_crumby_token_makes_limited_tokens(runner, app, client, sites):
    clock.pin(app, NOW)
    assert runner.invoke(cli, ["adduser", "bob", "a long password"]).exit_code == 0
    result = runner.invoke(cli, ["token", "bob", "--site", "WWW.Shop.Example", "--ingest-only"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    token = lines[-1]
    assert token.startswith("cmb_") and " " not in token
    assert "shop.example" in lines[0] and "ingest-only" in lines[0]
    assert post(client, token, [{"name": "cli"}]).get_json() == {"stored": 1}
    assert post(client, token, [{"name": "cli"}], site=BLOG).status_code == 403
    assert client.get("/api/private", headers=bearer(token)).status_code == 403
    with app.app_context():
        row = db.session.scalar(sa.select(ApiToken).where(ApiToken.site_id.is_not(None)))
        assert (row.site_id, row.ingest_only) == (sites[SHOP], True)
    # only a site
    site_token = runner.invoke(cli, ["token", "bob", "--site", BLOG]).output.strip().splitlines()
    assert client.get("/api/private/events", headers=bearer(site_token[-1])).get_json()["site"] == (
        BLOG
    )


def test_crumby_token_refuses_an_unknown_site(runner, app, sites):
    runner.invoke(cli, ["adduser", "bob", "a long password"])
    result = runner.invoke(cli, ["token", "bob", "--site", "nowhere.example"])
    assert result.exit_code != 0
    assert "no such site: nowhere.example" in result.output
    assert "Traceback" not in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_the_api_description_has_the_events_endpoint(client, sites):
    doc = client.get("/api/openapi.json").get_json()
    operation = doc["paths"]["/api/events"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["type"] == "array" and schema["maxItems"] == 1000
    assert schema["items"]["required"] == ["name"]
    assert set(schema["items"]["properties"]) == {"name", "value", "cid", "page", "datetime"}
    assert operation["security"] == [{"bearer": []}]
    assert {"200", "400", "401", "403", "413"} <= set(operation["responses"])
    page = client.get("/api").text
    assert "POST /api/events" in page and "--ingest-only" in page


def test_a_database_from_before_token_scopes_is_upgraded(other_database_url, tmp_path):
    settings = upgrades.config(other_database_url, tmp_path)
    old = create_app(settings)
    ensure_schema(old)
    with old.app_context():
        accounts.add_user("old", "a long password")
        token = accounts.create_token("old")
        with db.engine.begin() as connection:
            add_site(connection, SHOP)
            for column in ("site_id", "ingest_only"):
                connection.exec_driver_sql(f"ALTER TABLE api_tokens DROP COLUMN {column}")
            upgrades.rewind(connection, _v5_token_scopes)
    upgrades.close(old)

    upgraded = upgrades.upgraded(settings)
    with upgraded.app_context():
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("api_tokens")}
        assert {"site_id", "ingest_only"} <= columns
        # running the step again changes nothing (a branch merge may replay it)
        with db.engine.begin() as connection:
            _v5_token_scopes(connection)
        grant = accounts.grant_for_token(token)
        assert grant is not None and grant.unrestricted
        # new tokens get their limits in the upgraded table
        limited = accounts.create_token("old", site=SHOP, ingest_only=True)
        with db.engine.connect() as connection:
            site = find_site(connection, SHOP)
        assert accounts.grant_for_token(limited) == accounts.Grant(
            grant.user_id, site.id, SHOP, True
        )
        db.session.remove()
        db.engine.dispose()
    client = upgraded.test_client()
    clock.pin(upgraded, NOW)
    assert client.get("/api/private/events", headers=bearer(token)).status_code == 200
    assert client.post("/api/events", json=[{"name": "u"}], headers=bearer(limited)).json == {
        "stored": 1
    }


def test_an_unknown_url_parameter_is_refused_and_nothing_is_stored(client, app, tokens):
    for query in ("site=shop.example&sit=blog.example", "site=shop.example&=x", "dryrun=1"):
        answer = client.post(
            f"/api/events?{query}", json=[{"name": "signup"}], headers=bearer(tokens["full"])
        )
        assert answer.status_code == 400, query
        assert "unknown parameter" in answer.get_json()["error"]
    assert count(app) == 0
    assert post(client, tokens["full"], [{"name": "signup"}]).get_json() == {"stored": 1}
