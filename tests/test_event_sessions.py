"""An event carries the page it was sent from and its session's attributes, so filters narrow it."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crumby import clock, ingest
from crumby.extensions import db
from crumby.lifecycle.deletion import prune
from crumby.models import Event
from crumby.reporting import get_query, run_query
from crumby.reporting.filters import parse_filters
from crumby.sites import SiteInfo, add_site

T = dt.datetime(2026, 3, 2, 12, 0)
HOST = "shop.example"
SITE = f"https://{HOST}"


def _minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


@pytest.fixture
def site(app) -> SiteInfo:
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, HOST, "UTC", public=False)


def _view(cid: str, when: dt.datetime, page: str, **extra) -> dict:
    return {"cid": cid, "datetime": when, "doc_uri": SITE + page, **extra}


def _event(cid: str, when: dt.datetime, name: str, page: str | None = "/") -> dict:
    uri = SITE + page if page is not None else None
    return {"cid": cid, "datetime": when, "doc_uri": uri, "name": name, "value": None}


def _attributes(app, name: str) -> tuple:
    with app.app_context():
        row = db.session.execute(
            sa.select(
                Event.doc_path, Event.entry_page, Event.entry_source, Event.entry_country
            ).where(Event.name == name)
        ).one()
    return tuple(row)


def _events(app, site: SiteInfo, **filters: str) -> dict[str, int]:
    """The private events report for the day of T: name -> events."""
    with app.app_context():
        result = run_query(
            get_query("private", "events"),
            site,
            T.date(),
            T.date(),
            parse_filters(filters),
            use_cache=False,
        )
    return {row[0]: row[2] for row in result.data}


def test_an_event_takes_the_session_it_falls_in_whichever_batch_brought_its_view(app, site):
    google = {"referrer": "https://www.google.com/search", "country": "DE"}
    # ann's view is stored first; her events come in later batches
    ingest.store(app, visits=[_view("ann", T, "/", **google)])
    ingest.store(app, visits=[_view("ann", T + _minutes(10), "/pricing")])
    ingest.store(app, events=[_event("ann", T + _minutes(12), "signup", "/pricing")])
    # bob's view and event arrive in one batch
    ingest.store(
        app,
        visits=[_view("bob", T, "/docs", country="FR")],
        events=[_event("bob", T, "download", "/docs")],
    )
    # cid's last view was 31 minutes before the event: it is in no session
    ingest.store(
        app,
        visits=[_view("cid", T, "/", **google)],
        events=[_event("cid", T + _minutes(31), "late")],
    )
    # an app event of a visitor never seen on the site, without a page
    ingest.store(app, events=[{**_event("app", T, "api-call", None), "site_id": site.id}])

    # the page it was sent from, and the session's entry page, source and country
    assert _attributes(app, "signup") == ("/pricing", "/", "google.com", "DE")
    assert _attributes(app, "download") == ("/docs", "/docs", "(direct)", "FR")
    assert _attributes(app, "late") == ("/", None, None, None)
    assert _attributes(app, "api-call") == (None, None, None, None)

    # and when that session began (a funnel finds the event's session by it)
    with app.app_context():
        starts = dict(db.session.execute(sa.select(Event.name, Event.session_start)).all())
    assert starts == {"signup": T, "download": T, "late": None, "api-call": None}

    everything = {"signup": 1, "download": 1, "late": 1, "api-call": 1}
    assert _events(app, site) == everything
    assert _events(app, site, source="google.com") == {"signup": 1}
    assert _events(app, site, country="FR") == {"download": 1}
    assert _events(app, site, page="/pricing") == {"signup": 1}
    assert _events(app, site, entry_page="/") == {"signup": 1}
    # outside any session, an event matches only (none)
    assert _events(app, site, source="(none)") == {"late": 1, "api-call": 1}
    assert _events(app, site, page="(none)") == {"api-call": 1}


def test_the_tracker_sends_an_event_that_lands_in_the_views_session(app, client, site):
    clock.pin(app, T)
    answer = client.post(
        "/visit",
        json={"cid": "ann", "dl": SITE + "/?utm_campaign=spring", "dr": "https://news.example/"},
    )
    assert answer.status_code == 204
    clock.pin(app, T + _minutes(2))
    answer = client.post("/event", json={"cid": "ann", "en": "buy", "dl": SITE + "/cart"})
    assert answer.status_code == 204
    with app.app_context():
        row = db.session.execute(
            sa.select(Event.doc_path, Event.entry_source, Event.entry_utm_campaign)
        ).one()
    assert tuple(row) == ("/cart", "news.example", "spring")
    assert _events(app, site, source="news.example") == {"buy": 1}
    assert _events(app, site, source="google.com") == {}


def test_prune_gives_events_the_attributes_of_their_sessions_new_entry(app, site):
    # a session that began before the cut-off: its first view goes, the event stays
    ingest.store(
        app,
        visits=[
            _view("ann", T - _minutes(20), "/old", referrer="https://old.example/"),
            _view("ann", T + _minutes(5), "/new"),
        ],
        events=[_event("ann", T + _minutes(6), "click", "/new")],
    )
    assert _attributes(app, "click") == ("/new", "/old", "old.example", None)
    with app.app_context(), db.engine.connect() as connection:
        done = prune(connection, T)
    assert (done.visits, done.events) == (1, 0)
    # the view left is its session's entry now, and the event follows it
    assert _attributes(app, "click") == ("/new", "/new", "(direct)", None)
    with app.app_context():
        assert db.session.scalar(sa.select(Event.session_start)) == T + _minutes(5)
    assert _events(app, site, entry_page="/new") == {"click": 1}
    assert _events(app, site, entry_page="/old") == {}
