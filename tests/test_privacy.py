"""Do Not Track and Global Privacy Control on the server (RESPECT_DNT, contract 2, 4 and 11).

A visitor whose browser sends ``DNT: 1`` or ``Sec-GPC: 1`` to a Crumby with
RESPECT_DNT on gets the same answer as anyone (so the page sees no error),
and nothing of theirs is stored; the drop is counted under ``dnt``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from crumby import clock, create_app, ingest, settings
from crumby.extensions import db
from crumby.ingest import counters_for
from crumby.models import Event, Visit
from crumby.sites import add_site
from crumby.tracking.endpoint import PIXEL

NOW = dt.datetime(2026, 3, 10, 12, 0)
PAGE = "https://shop.example/tea"
VISIT = {"cid": "visitor-1", "dl": PAGE, "dt": "Tea"}
EVENT = {"cid": "visitor-1", "en": "buy", "ev": "green", "dl": PAGE}
DNT = {"DNT": "1"}
GPC = {"Sec-GPC": "1"}


def make_app(database_url: str, tmp_path, **config) -> Flask:
    """A Crumby on the test database, with shop.example registered and the clock at NOW."""
    made = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "test-secret",
            "GEOIP2_DATABASE_NAME": str(tmp_path / "no-geoip.mmdb"),
            **config,
        }
    )
    clock.pin(made, NOW)
    with made.app_context(), db.engine.begin() as connection:
        add_site(connection, "shop.example")
    return made


@pytest.fixture
def respecting(app, database_url, tmp_path) -> Iterator[Flask]:
    """A Crumby with RESPECT_DNT = True (the ``app`` fixture empties the tables afterwards)."""
    made = make_app(database_url, tmp_path, RESPECT_DNT=True)
    yield made
    with made.app_context():
        db.engine.dispose()


@pytest.fixture
def default(app, database_url, tmp_path) -> Iterator[Flask]:
    """A Crumby with the default settings."""
    made = make_app(database_url, tmp_path)
    yield made
    with made.app_context():
        db.engine.dispose()


def count(app: Flask, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def send_every_kind(client, headers: dict[str, str]) -> None:
    """A visit and an event, by POST (204) and by GET (the GIF), as browsers send them."""
    for path, params in (("/visit", VISIT), ("/event", EVENT)):
        posted = client.post(path, data=params, headers=headers)
        assert posted.status_code == 204, posted.data
        assert posted.data == b""
        got = client.get(path, query_string=params, headers=headers)
        assert got.status_code == 200, got.data
        assert got.mimetype == "image/gif" and got.data == PIXEL
        assert got.headers["Access-Control-Allow-Origin"] == "*"


def test_the_settings_default_to_storing_everything_and_keeping_it_forever():
    assert settings.DEFAULTS["RESPECT_DNT"] is False
    assert settings.DEFAULTS["RETENTION_DAYS"] == 0
    environ = {"CRUMBY_RESPECT_DNT": "true", "CRUMBY_RETENTION_DAYS": "90"}
    resolved = settings.resolve(environ=environ)
    assert resolved["RESPECT_DNT"] is True and resolved["RETENTION_DAYS"] == 90


@pytest.mark.parametrize("headers", [DNT, GPC, {**DNT, **GPC}], ids=["dnt", "gpc", "both"])
def test_under_respect_dnt_a_hit_asking_not_to_be_tracked_is_answered_but_not_stored(
    respecting, headers
):
    send_every_kind(respecting.test_client(), headers)
    assert count(respecting, Visit) == 0 and count(respecting, Event) == 0
    stored, dropped = counters_for(respecting).snapshot()
    assert dropped == {"dnt": 4}
    assert sum(stored.values()) == 0


def test_under_respect_dnt_other_hits_are_stored_as_usual(respecting):
    client = respecting.test_client()
    send_every_kind(client, {"DNT": "0"})
    send_every_kind(client, {})
    assert count(respecting, Visit) == 4 and count(respecting, Event) == 4
    stored, dropped = counters_for(respecting).snapshot()
    assert stored == {"visits": 4, "events": 4}
    assert "dnt" not in dropped


def test_without_respect_dnt_a_hit_with_dnt_is_stored(default):
    send_every_kind(default.test_client(), {**DNT, **GPC})
    assert count(default, Visit) == 2 and count(default, Event) == 2
    with default.app_context():
        assert db.session.scalars(sa.select(Visit.cid)).all() == ["visitor-1", "visitor-1"]
    stored, dropped = counters_for(default).snapshot()
    assert stored == {"visits": 2, "events": 2}
    assert "dnt" not in dropped


def test_only_the_hits_that_ask_are_dropped_from_a_batch(respecting):
    """The pipeline drops rows by their hint, whichever writer brings them together."""
    quiet = {"cid": "a", "datetime": NOW, "doc_uri": PAGE, "dnt_hint": True}
    loud = {"cid": "b", "datetime": NOW, "doc_uri": PAGE, "dnt_hint": False}
    plain = {"cid": "c", "datetime": NOW, "doc_uri": PAGE}
    assert ingest.store(respecting, [quiet, loud, plain]) == (2, 0)
    with respecting.app_context():
        assert sorted(db.session.scalars(sa.select(Visit.cid))) == ["b", "c"]
    assert counters_for(respecting).snapshot()[1] == {"dnt": 1}
