"""/cmb.js, /visit and /event as a site's pages (and anyone else) call them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from crumby import create_app
from crumby.extensions import db
from crumby.models import Event, Visit
from crumby.sites import add_site

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
PAGE = "https://shop.example/products/tea?utm_source=newsletter&utm_medium=email&utm_campaign=nov"
VISIT = {
    "cid": "visitor-1",
    "dl": PAGE,
    "dt": "Green tea",
    "de": "UTF-8",
    "dr": "https://search.example/?q=tea",
    "ul": "en-GB",
    "sd": "24-bit",
    "sr": "1920x1080",
}
STATIC_CMB = Path(__file__).parents[1] / "crumby" / "static" / "cmb.js"


@pytest.fixture(autouse=True)
def site(app):
    """Hits are stored only for registered sites (contract section 8): register the pages' host."""
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, "shop.example")


def visits(app) -> list[Visit]:
    with app.app_context():
        rows = db.session.scalars(select(Visit).order_by(Visit.id)).all()
        db.session.expunge_all()
        return list(rows)


def events(app) -> list[Event]:
    with app.app_context():
        rows = db.session.scalars(select(Event).order_by(Event.id)).all()
        db.session.expunge_all()
        return list(rows)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


# --- the tracker script -----------------------------------------------------------


def test_cmb_js_is_served_as_cacheable_javascript_under_1000_bytes_gzipped(client):
    response = client.get("/cmb.js")
    assert response.status_code == 200
    assert response.mimetype in ("text/javascript", "application/javascript")
    assert "max-age=3600" in response.headers["Cache-Control"]
    assert response.data == STATIC_CMB.read_bytes()
    assert b"sendBeacon" in response.data
    assert len(gzip.compress(response.data, 9)) <= 1000


@pytest.mark.parametrize("name", ["cmb.js", "cmb.auto.js"])
def test_both_tracker_builds_are_served_alike(client, name):
    response = client.get("/" + name)
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Set-Cookie" not in response.headers
    assert response.data == (STATIC_CMB.parent / name).read_bytes()


def test_the_automatic_events_live_only_in_cmb_auto_js(client):
    plain, auto = client.get("/cmb.js").data, client.get("/cmb.auto.js").data
    for name in (b'"outbound"', b'"download"', b'"404"', b"auxclick"):
        assert name not in plain
        assert name in auto


def test_other_scripts_are_not_served_from_the_root(client):
    assert client.get("/cmb.other.js").status_code == 404
    assert client.get("/size.py").status_code == 404


@pytest.mark.parametrize("name", ["cmb.js", "cmb.auto.js"])
def test_cmb_js_cache_lifetime_follows_the_setting(app, client, name):
    app.config["TRACKER_MAX_AGE"] = 60
    assert "max-age=60" in client.get("/" + name).headers["Cache-Control"]


# --- the four encodings -------------------------------------------------------------


def _assert_stored_visit(app):
    [visit] = visits(app)
    assert visit.cid == "visitor-1"
    assert visit.doc_uri == PAGE
    assert visit.doc_title == "Green tea"
    assert visit.doc_enc == "UTF-8"
    assert visit.referrer == "https://search.example/?q=tea"
    assert visit.lang == "en-GB"
    assert visit.screen_depth == "24-bit"
    assert visit.screen_res == "1920x1080"
    assert (visit.utm_source, visit.utm_medium, visit.utm_campaign) == (
        "newsletter",
        "email",
        "nov",
    )
    assert visit.is_bot is False
    return visit


def test_visit_from_an_image_fallback_query_string_answers_a_gif(app, client):
    response = client.get("/visit?" + urlencode(VISIT), headers={"User-Agent": CHROME})
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert response.data.startswith(b"GIF89a")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    _assert_stored_visit(app)


def test_visit_from_a_form_body(app, client):
    response = client.post("/visit", data=VISIT, headers={"User-Agent": CHROME})
    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    _assert_stored_visit(app)


def test_visit_from_send_beacon_text_plain_form_encoding(app, client):
    response = client.post(
        "/visit",
        data=urlencode(VISIT),
        content_type="text/plain;charset=UTF-8",
        headers={"User-Agent": CHROME},
    )
    assert response.status_code == 204
    _assert_stored_visit(app)


def test_visit_from_text_plain_holding_json(app, client):
    response = client.post(
        "/visit",
        data=json.dumps(VISIT),
        content_type="text/plain;charset=UTF-8",
        headers={"User-Agent": CHROME},
    )
    assert response.status_code == 204
    _assert_stored_visit(app)


def test_visit_from_a_json_body(app, client):
    response = client.post("/visit", json=VISIT, headers={"User-Agent": CHROME})
    assert response.status_code == 204
    _assert_stored_visit(app)


def test_server_adds_time_headers_and_user_agent_facts(app, client):
    app.config["ANONYMIZE_IP"] = False  # the full address (the default cuts it, see below)
    client.post(
        "/visit",
        json=VISIT,
        headers={
            "User-Agent": CHROME,
            "Referer": "https://shop.example/",
            "Accept-Language": "en-GB,en;q=0.9",
        },
    )
    visit = _assert_stored_visit(app)
    assert visit.ip == "127.0.0.1"
    assert visit.referrer_header == "https://shop.example/"
    assert visit.lang_header == "en-GB,en;q=0.9"
    assert (visit.platform, visit.browser, visit.version, visit.device) == (
        "Linux",
        "Chrome",
        "120.0",
        "desktop",
    )
    assert visit.datetime is not None


def test_the_address_is_stored_cut_to_its_network_by_default(app, client):
    assert app.config["ANONYMIZE_IP"] is True
    assert client.post("/visit", json=VISIT).status_code == 204
    assert client.post("/event", json={"en": "x", "dl": PAGE}).status_code == 204
    [visit], [event] = visits(app), events(app)
    assert (visit.ip, event.ip) == ("127.0.0.0", "127.0.0.0")


def test_event_in_every_encoding(app, client):
    app.config["ANONYMIZE_IP"] = False
    fields = {"cid": "visitor-1", "en": "signup", "ev": "gold", "dl": PAGE, "dt": "Tea"}
    assert client.get("/event?" + urlencode(fields)).status_code == 200
    assert client.post("/event", data=fields).status_code == 204
    assert (
        client.post("/event", data=urlencode(fields), content_type="text/plain").status_code == 204
    )
    assert client.post("/event", json=fields).status_code == 204
    stored = events(app)
    assert len(stored) == 4
    for event in stored:
        assert (event.cid, event.name, event.value, event.doc_uri, event.doc_title) == (
            "visitor-1",
            "signup",
            "gold",
            PAGE,
            "Tea",
        )
        assert event.ip == "127.0.0.1"


def test_json_numbers_are_kept_as_text(app, client):
    assert client.post("/event", json={"en": "score", "ev": 42, "dl": PAGE}).status_code == 204
    assert events(app)[0].value == "42"


def test_cors_preflight_allows_json_posts_from_any_site(client):
    response = client.options(
        "/visit",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]


# --- what is refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/visit", {"dt": "no url"}, "dl"),
        ("/visit", {"dl": ""}, "dl"),
        ("/visit", {"dl": "not a url"}, "dl"),
        ("/visit", {"dl": PAGE, "sr": "big"}, "sr"),
        ("/visit", {"dl": PAGE, "sd": "deep"}, "sd"),
        ("/event", {"ev": "no name"}, "en"),
        ("/event", {"en": "x", "dl": "::nope"}, "dl"),
    ],
)
def test_missing_or_unparsable_fields_get_400_json(app, client, path, fields, message):
    for response in (client.get(path + "?" + urlencode(fields)), client.post(path, json=fields)):
        assert response.status_code == 400
        assert message in response.get_json()["error"]
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert count(app, Visit) == 0 and count(app, Event) == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"dl": {"nested": 1}}', "application/json"),
        (b"{broken", "text/plain"),
        (b"dl=\xff\xfe", "application/x-www-form-urlencoded"),
    ],
)
def test_unparsable_bodies_get_400_json(app, client, body, content_type):
    response = client.post("/visit", data=body, content_type=content_type)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert count(app, Visit) == 0


def test_bodies_and_query_strings_past_the_limit_get_413(app, client):
    big = {"dl": PAGE, "dt": "x" * 9000}
    assert client.post("/visit", data=urlencode(big)).status_code == 413
    assert client.post("/visit", json=big).status_code == 413
    response = client.get("/visit?" + urlencode(big))
    assert response.status_code == 413
    assert "8192" in response.get_json()["error"]
    assert count(app, Visit) == 0


def test_size_limit_is_configurable(app, client):
    app.config["HIT_MAX_BYTES"] = 100
    assert client.post("/visit", json={"dl": PAGE, "dt": "x" * 200}).status_code == 413
    app.config["HIT_MAX_BYTES"] = 100_000
    assert client.post("/visit", json={"dl": PAGE, "dt": "x" * 9000}).status_code == 204


def test_other_methods_get_405_json(client):
    for method in ("PUT", "DELETE", "PATCH"):
        response = client.open("/visit", method=method, json={"dl": PAGE})
        assert response.status_code == 405
        assert method in response.get_json()["error"]
        assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


def test_only_the_exact_hit_paths_are_hits(app, client):
    for path in ("/visit/", "/visit/x", "/visits", "/event/"):
        response = client.post(path, json={"dl": PAGE, "en": "x"})
        assert response.status_code in (404, 405), path
        assert response.get_json()["error"]
    assert count(app, Visit) == 0 and count(app, Event) == 0


def test_an_unreachable_database_answers_hits_with_503_json(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:////nonexistent-dir/x/crumby.db"})
    response = app.test_client().post("/visit", json={"dl": PAGE})
    assert response.status_code == 503
    assert response.get_json() == {"error": "database unavailable"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_a_bug_in_a_hit_is_logged_and_answered_500_json_not_a_traceback(app, monkeypatch, caplog):
    from crumby.tracking import endpoint

    def broken(*_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(endpoint, "enrich", broken)
    app.testing = False
    response = app.test_client().post("/visit", json={"dl": PAGE})
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error"}
    assert "a bug" in caplog.text  # the traceback goes to the log, not to the caller
    app.testing = True
    with pytest.raises(RuntimeError):  # a testing app raises, as Flask does
        app.test_client().post("/visit", json={"dl": PAGE})


def test_over_long_fields_are_truncated_to_their_columns(app, client):
    long_url = "https://shop.example/" + "p" * 5000
    fields = {
        "dl": long_url,
        "dt": "t" * 3000,
        "cid": "c" * 500,
        "ul": "l" * 200,
        "de": "e" * 200,
        "dr": "r" * 3000,
    }
    headers = {"User-Agent": CHROME + " " + "z" * 5000, "Accept-Language": "a" * 1000}
    limit = {"HIT_MAX_BYTES": 100_000}
    app.config.update(limit)
    assert client.post("/visit", json=fields, headers=headers).status_code == 204
    event = {"en": "n" * 900, "ev": "v" * 3000, "site": "shop.example"}
    assert client.post("/event", json=event).status_code == 204
    [visit] = visits(app)
    assert visit.doc_uri == long_url[:2048]
    assert visit.doc_title == "t" * 512
    assert visit.cid == "c" * 64
    assert visit.lang == "l" * 35
    assert visit.doc_enc == "e" * 32
    assert visit.referrer == "r" * 2048
    assert visit.lang_header == "a" * 255
    assert visit.browser == "Chrome"
    [event] = events(app)
    assert event.name == "n" * 255
    assert event.value == "v" * 1024


def test_text_databases_refuse_is_cleaned_not_a_500(app, client):
    fields = {"dl": PAGE, "dt": "nul\x00 and lone \ud800 surrogate and emoji \U0001f375"}
    response = client.post("/visit", data=json.dumps(fields), content_type="application/json")
    assert response.status_code == 204
    [visit] = visits(app)
    assert visit.doc_title == "nul and lone ? surrogate and emoji \U0001f375"


def test_hits_are_answered_before_flask_and_touch_no_session(app, client):
    """/visit and /event skip Flask's request machinery (hooks, sessions): it is their hot path."""
    from flask.sessions import NullSession, SecureCookieSession

    seen: list[str] = []
    app.before_request(lambda: seen.append(request_path()))
    client.set_cookie("session", "a-forged-or-stale-session-cookie")
    assert client.post("/visit", json={"dl": PAGE}).status_code == 204
    hit = client.post("/event", json={"en": "x"})
    assert hit.status_code == 204 and "Set-Cookie" not in hit.headers
    assert client.get("/cmb.js").status_code == 200
    assert seen == ["/cmb.js"], "only the script went through Flask"
    with app.test_request_context("/cmb.js"):
        assert isinstance(app.session_interface.open_session(app, _request()), NullSession)
    with app.test_request_context("/"):
        session = app.session_interface.open_session(app, _request())
        assert isinstance(session, SecureCookieSession)


def request_path() -> str:
    from flask import request

    return request.path


def _request():
    from flask import request

    return request._get_current_object()


def test_a_chunked_body_without_content_length_is_read_and_limited(app, client):
    import io

    def chunked(body: bytes):
        return client.post(
            "/visit",
            input_stream=io.BytesIO(body),
            content_type="text/plain",
            environ_overrides={"wsgi.input_terminated": True},
        )

    assert chunked(urlencode({"dl": PAGE, "dt": "chunked"}).encode()).status_code == 204
    assert chunked(urlencode({"dl": PAGE, "dt": "x" * 9000}).encode()).status_code == 413
    [visit] = visits(app)
    assert visit.doc_title == "chunked"


def test_head_requests_answer_like_get_but_record_nothing(app, client):
    response = client.head("/visit?" + urlencode({"dl": PAGE}))
    assert response.status_code == 200
    assert response.mimetype == "image/gif" and response.data == b""
    assert client.head("/visit").status_code == 400
    assert count(app, Visit) == 0


def test_hits_need_no_csrf_token_while_forms_do(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/visit", data={"dl": PAGE}).status_code == 204
    assert (
        client.post(
            "/event",
            data=urlencode({"en": "x"}),
            content_type="text/plain",
            headers={"Referer": PAGE},
        ).status_code
        == 204
    )
    assert count(app, Visit) == 1 and count(app, Event) == 1
    refused = client.post("/login", data={"username": "x", "password": "y"})
    assert refused.status_code == 400  # the login form, by contrast, is CSRF-protected
