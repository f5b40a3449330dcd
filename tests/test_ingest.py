"""Version 2's ingest rules: which site a hit is stored under, what is dropped and counted.

Contract sections 4 and 8: a hit is stored under the site its ``site``
parameter names when that is registered, else under its page's host
(``www.`` folded; for events ``dl`` or the Referer's page); a well-formed hit
of no site is answered exactly like a stored one and counted as
``unknown_site``; bots are stored flagged and counted as ``bot``.
"""

from __future__ import annotations

import copy
import datetime as dt
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from crumby import clock, ingest
from crumby.extensions import db
from crumby.ingest import counters_for, pipeline_for
from crumby.ingest.pipeline import EVENTS, VISITS, Pipeline
from crumby.models import Event, Visit
from crumby.sites import SiteInfo, add_site

T = dt.datetime(2026, 5, 4, 9, 30, 0)
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture(autouse=True)
def pinned(app):
    clock.pin(app, T)


@pytest.fixture
def shop(app) -> SiteInfo:
    return _add_site(app, "shop.example")


def _add_site(app, host: str) -> SiteInfo:
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, host)


def _visits(app) -> list[tuple]:
    """(site_id, doc_uri) of every stored visit, in order."""
    with app.app_context():
        query = sa.select(Visit.site_id, Visit.doc_uri).order_by(Visit.id)
        return [tuple(r) for r in db.session.execute(query)]


def _events(app) -> list[tuple]:
    """(site_id, name) of every stored event, in order."""
    with app.app_context():
        rows = db.session.execute(sa.select(Event.site_id, Event.name).order_by(Event.id))
        return [tuple(r) for r in rows]


def _dropped(app) -> dict[str, int]:
    return counters_for(app).snapshot()[1]


def _visit(client, dl: str, **params):
    answer = client.post("/visit", json={"dl": dl, **params}, headers={"User-Agent": CHROME})
    assert answer.status_code == 204, answer.data
    return answer


# ---- hits of no site --------------------------------------------------------------------------


def _answer(response) -> tuple:
    return response.status_code, sorted(response.headers.items()), response.data


def test_a_hit_for_an_unknown_host_is_answered_like_a_stored_one_but_not_stored(app, client, shop):
    headers = {"User-Agent": CHROME}

    def hits(host: str) -> list[tuple]:
        visit = {"dl": f"https://{host}/page", "cid": "c1"}
        event = {"en": "signup", "dl": f"https://{host}/page", "cid": "c1"}
        return [
            _answer(client.post("/visit", json=visit, headers=headers)),
            _answer(client.post("/visit", data=urlencode(visit), content_type="text/plain")),
            _answer(client.get("/visit?" + urlencode(visit), headers=headers)),
            _answer(client.post("/event", json=event, headers=headers)),
            _answer(client.get("/event?" + urlencode(event), headers=headers)),
        ]

    stored = hits("shop.example")
    unknown = hits("elsewhere.example")
    assert unknown == stored
    assert [status for status, _, _ in stored] == [204, 204, 200, 204, 200]
    assert stored[2][2].startswith(b"GIF89a")
    assert _visits(app) == [(shop.id, "https://shop.example/page")] * 3
    assert _events(app) == [(shop.id, "signup")] * 2
    assert counters_for(app).snapshot() == ({"visits": 3, "events": 2}, {"unknown_site": 5})


def test_without_any_site_nothing_is_stored(app, client):
    _visit(client, "https://shop.example/")
    assert client.post("/event", json={"en": "x"}).status_code == 204
    assert _visits(app) == [] and _events(app) == []
    assert _dropped(app) == {"unknown_site": 2}


# ---- which site ---------------------------------------------------------------------------------


def test_www_is_folded_into_the_site(app, client, shop):
    other = _add_site(app, "www.other.example")  # registered as other.example
    assert other.host == "other.example"
    _visit(client, "https://www.shop.example/a")
    _visit(client, "https://WWW.Shop.Example./b")
    _visit(client, "https://other.example/c")
    _visit(client, "https://www.other.example/d")
    _visit(client, "https://blog.shop.example/e")  # another host, not the same site
    assert _visits(app) == [
        (shop.id, "https://www.shop.example/a"),
        (shop.id, "https://WWW.Shop.Example./b"),
        (other.id, "https://other.example/c"),
        (other.id, "https://www.other.example/d"),
    ]
    assert _dropped(app) == {"unknown_site": 1}


def test_the_site_parameter_names_the_site_when_the_page_host_differs(app, client, shop):
    other = _add_site(app, "other.example")
    _visit(client, "https://preview.cdn.example/p", site="shop.example")
    _visit(client, "https://other.example/q", site="shop.example")  # the parameter wins
    _visit(client, "https://other.example/r", site="www.Shop.example")
    _visit(client, "https://other.example/s")
    event = {"en": "play", "site": "shop.example"}
    assert client.post("/event", json=event).status_code == 204
    assert [site_id for site_id, _ in _visits(app)] == [shop.id, shop.id, shop.id, other.id]
    assert _events(app) == [(shop.id, "play")]
    assert _dropped(app) == {}


def test_an_unregistered_site_parameter_falls_back_to_the_page_host(app, client, shop):
    _visit(client, "https://shop.example/a", site="nope.example")
    _visit(client, "https://elsewhere.example/b", site="nope.example")
    referred = client.post(
        "/event",
        json={"en": "x", "site": "nope.example"},
        headers={"Referer": "https://shop.example/c"},
    )
    assert referred.status_code == 204
    assert _visits(app) == [(shop.id, "https://shop.example/a")]
    assert _events(app) == [(shop.id, "x")]
    assert _dropped(app) == {"unknown_site": 1}


def test_an_event_without_dl_is_attributed_by_its_referer(app, client, shop):
    other = _add_site(app, "other.example")

    def event(name: str, referer: str | None = None, **params) -> None:
        headers = {"Referer": referer} if referer else {}
        answer = client.post("/event", json={"en": name, **params}, headers=headers)
        assert answer.status_code == 204

    event("by-referer", "https://www.shop.example/cart?step=2")
    event("dl-wins", "https://shop.example/", dl="https://other.example/")
    event("unknown-referer", "https://elsewhere.example/")
    event("no-page-at-all")
    assert _events(app) == [(shop.id, "by-referer"), (other.id, "dl-wins")]
    assert _dropped(app) == {"unknown_site": 2}


def test_bots_are_stored_flagged_and_counted_as_bot(app, client, shop):
    bot = {"User-Agent": GOOGLEBOT}
    assert (
        client.post("/visit", json={"dl": "https://shop.example/"}, headers=bot).status_code == 204
    )
    curl = {"User-Agent": "curl/8.4.0"}
    event = {"en": "x", "dl": "https://shop.example/"}
    assert client.post("/event", json=event, headers=curl).status_code == 204
    _visit(client, "https://shop.example/human")
    # a bot on no site is dropped for that reason alone
    unknown = {"dl": "https://elsewhere.example/"}
    assert client.post("/visit", json=unknown, headers=bot).status_code == 204
    with app.app_context():
        visits = db.session.execute(sa.select(Visit.is_bot, Visit.site_id).order_by(Visit.id))
        events = db.session.execute(sa.select(Event.is_bot, Event.site_id))
        assert [tuple(r) for r in visits] == [(True, shop.id), (False, shop.id)]
        assert [tuple(r) for r in events] == [(True, shop.id)]
    stored, dropped = counters_for(app).snapshot()
    assert stored == {"visits": 2, "events": 1}
    assert dropped == {"bot": 2, "unknown_site": 1}


# ---- the caller's rows --------------------------------------------------------------------------


def _rows() -> tuple[list[dict], list[dict]]:
    """A visit named by its ``site`` hint, one by its page, one of no site; an event by Referer."""
    visits = [
        {
            "cid": "a",
            "datetime": T,
            "doc_uri": "https://cdn.example/x?y=1",
            "site_hint": "shop.example",
        },
        {"cid": "a", "datetime": T + dt.timedelta(minutes=1), "doc_uri": "https://shop.example/"},
        {"cid": "b", "datetime": T, "doc_uri": "https://elsewhere.example/"},
    ]
    events = [{"cid": "a", "datetime": T, "name": "e", "page_hint": "https://www.shop.example/"}]
    return visits, events


def test_the_pipeline_never_changes_the_callers_rows(app, shop):
    visits, events = _rows()
    before = copy.deepcopy((visits, events))
    assert ingest.store(app, visits=visits, events=events) == (2, 1)
    assert (visits, events) == before
    with app.app_context():
        stored = db.session.execute(
            sa.select(Visit.site_id, Visit.doc_path, Visit.session_seq).order_by(Visit.datetime)
        ).all()
    assert [tuple(r) for r in stored] == [(shop.id, "/x", 1), (shop.id, "/", 2)]
    assert _events(app) == [(shop.id, "e")]


def test_a_batch_retried_after_a_failure_starts_from_the_same_input(app, shop):
    visits, events = _rows()
    before = copy.deepcopy((visits, events))
    with app.app_context():
        pipeline: Pipeline = pipeline_for(app, db.engine)
        items = [(VISITS, row) for row in visits] + [(EVENTS, row) for row in events]
        with db.engine.connect() as conn:
            with conn.begin() as transaction:
                first = pipeline.run(conn, items)
                transaction.rollback()  # the commit failed
            assert (visits, events) == before
            with conn.begin():
                second = pipeline.run(conn, items)
    assert (second.stored, second.dropped) == (first.stored, first.dropped)
    assert second.stored == {"visits": 2, "events": 1}
    assert second.dropped == {"unknown_site": 1}
    assert [row["session_seq"] for row in second.visits] == [1, 2]
    assert len(_visits(app)) == 2 and _events(app) == [(shop.id, "e")]


def test_the_hit_writer_retries_a_failed_batch_from_the_same_rows(app, client, shop, monkeypatch):
    """A hit whose first commit fails is stored on the retry, under the site its hint named."""
    original = Pipeline.run
    calls: list[int] = []

    def fails_once(self, connection, rows):
        rows = list(rows)
        before = copy.deepcopy([row for _table, row in rows])
        batch = original(self, connection, rows)
        assert [row for _table, row in rows] == before, "the retry gets the same rows"
        calls.append(len(batch.visits))
        if len(calls) == 1:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return batch

    monkeypatch.setattr(Pipeline, "run", fails_once)
    _visit(client, "https://cdn.example/p", site="shop.example", cid="r")
    assert calls == [1, 1]
    assert _visits(app) == [(shop.id, "https://cdn.example/p")]
    assert counters_for(app).snapshot() == ({"visits": 1}, {})
