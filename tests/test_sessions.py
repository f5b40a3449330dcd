"""Sessions are stitched as visits are stored, so that reports count them with plain sums."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from crumby import create_app
from crumby.database import SCHEMA_VERSION, ensure_schema
from crumby.extensions import db
from crumby.ingest import sessions
from crumby.ingest.sessions import Last, follow, newest_views
from crumby.models import SchemaVersion, Visit, url_host, utcnow
from tests.conftest import _server_database

T = dt.datetime(2026, 3, 1, 12, 0, 0)
NEW_COLUMNS = ["doc_host", "referrer_host", "session_start", "session_seq", "session_gap"]


def _minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def _stored(app, cid: str) -> list[tuple]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Visit.session_start, Visit.session_seq, Visit.session_gap)
            .where(Visit.cid == cid)
            .order_by(Visit.datetime, Visit.id)
        ).all()
    return [tuple(row) for row in rows]


def _add(app, *rows: dict) -> None:
    with app.app_context():
        db.session.add_all(Visit(**row) for row in rows)
        db.session.commit()


# ---- the rule ---------------------------------------------------------------------------


def test_a_first_view_starts_a_session():
    assert follow(None, T) == (Last(T, T, 1), 0.0)


def test_a_view_within_half_an_hour_continues_the_session():
    last = Last(T, T - _minutes(5), 2)
    assert follow(last, T + _minutes(30)) == (Last(T + _minutes(30), T - _minutes(5), 3), 1800.0)


def test_a_view_after_more_than_half_an_hour_starts_a_new_one():
    later = T + _minutes(30) + dt.timedelta(seconds=1)
    assert follow(Last(T, T, 4), later) == (Last(later, later, 1), 0.0)


def test_a_view_stored_out_of_order_continues_without_a_negative_gap():
    assert follow(Last(T, T, 1), T - dt.timedelta(seconds=3)) == (Last(T, T, 2), 0.0)


# ---- the tracker stitches as it stores ------------------------------------------------------


def _view(client, cid: str, path: str = "/") -> None:
    answer = client.post("/visit", json={"cid": cid, "dl": f"https://s.example{path}"})
    assert answer.status_code == 204


def test_hits_of_one_visitor_chain_into_one_session(app, client):
    for n in range(3):
        _view(client, "ann", f"/{n}")
    _view(client, "bob")
    with app.app_context():
        times = db.session.scalars(
            sa.select(Visit.datetime).where(Visit.cid == "ann").order_by(Visit.datetime)
        ).all()
    ann = _stored(app, "ann")
    assert [seq for _, seq, _ in ann] == [1, 2, 3]
    assert {start for start, _, _ in ann} == {times[0]}
    gaps = [0.0] + [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    # MySQL's DATETIME keeps whole seconds; the gaps were measured before that rounding
    assert [gap for _, _, gap in ann] == pytest.approx(gaps, abs=1.0)
    assert [seq for _, seq, _ in _stored(app, "bob")] == [1]


def test_the_tracker_continues_a_session_it_finds_in_the_database(app, client):
    now = utcnow().replace(microsecond=0)  # as MySQL's DATETIME stores it
    started = now - _minutes(20)
    # cara viewed a page 10 minutes ago, her session's third; dan was last here 31 minutes ago
    _add(
        app,
        {
            "cid": "cara",
            "datetime": now - _minutes(10),
            "session_start": started,
            "session_seq": 3,
            "session_gap": 60.0,
        },
        {
            "cid": "cara",
            "datetime": now - _minutes(11),
            "session_start": started,
            "session_seq": 2,
            "session_gap": 540.0,
        },
        {
            "cid": "dan",
            "datetime": now - _minutes(31),
            "session_start": now - _minutes(31),
            "session_seq": 1,
            "session_gap": 0.0,
        },
    )
    for cid in ("cara", "dan"):
        assert (
            client.post("/visit", json={"cid": cid, "dl": "https://s.example/"}).status_code == 204
        )
    cara = _stored(app, "cara")[-1]
    assert cara[:2] == (started, 4) and cara[2] == pytest.approx(600, abs=5)
    dan_start, dan_seq, dan_gap = _stored(app, "dan")[-1]
    assert (dan_seq, dan_gap) == (1, 0.0) and dan_start > now - _minutes(1)


def test_the_tracker_stores_the_hosts_of_page_and_referrer(app, client):
    hit = {"cid": "x", "dl": "https://Shop.Example:8443/a?b", "dr": "https://user@news.example/x"}
    assert client.post("/visit", json=hit).status_code == 204
    with app.app_context():
        visit = db.session.scalars(sa.select(Visit)).one()
    assert (visit.doc_host, visit.referrer_host) == ("shop.example", "news.example")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("HTTPS://Example.COM/a/b?c", "example.com"),
        ("http://x.example:8080", "x.example"),
        ("https://a:b@c.example./", "c.example"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("no-scheme/path", None),
        ("", None),
        (None, None),
        ("http://[::1", None),
    ],
)
def test_url_host(url, host):
    assert url_host(url) == host


def test_rows_stored_without_the_tracker_get_their_hosts_on_insert(app):
    _add(app, {"cid": "x", "datetime": T, "doc_uri": "https://A.example/", "referrer": None})
    with app.app_context():
        visit = db.session.scalars(sa.select(Visit)).one()
    assert (visit.doc_host, visit.referrer_host) == ("a.example", None)


# ---- stitching afterwards -----------------------------------------------------------------


def test_stitch_missing_puts_imported_views_in_their_sessions(app):
    minutes = [0, 55, 10, 20, 90]  # imported out of order; 0-10-20, 55 and 90 are sessions
    _add(app, *({"cid": "imp", "datetime": T + _minutes(m)} for m in minutes))
    _add(app, {"cid": None, "datetime": T}, {"cid": None, "datetime": T + _minutes(1)})
    with app.app_context():
        changed = stitch_missing(db.session.connection())
        db.session.commit()
    assert changed == 7
    assert _stored(app, "imp") == [
        (T, 1, 0.0),
        (T, 2, 600.0),
        (T, 3, 600.0),
        (T + _minutes(55), 1, 0.0),
        (T + _minutes(90), 1, 0.0),
    ]
    with app.app_context():
        anonymous = db.session.execute(
            sa.select(Visit.session_seq, Visit.session_gap).where(Visit.cid.is_(None))
        ).all()
    assert sorted(tuple(row) for row in anonymous) == [(1, 0.0), (1, 0.0)], "each alone"


def test_a_view_missing_any_session_column_counts_as_unstitched(app):
    _add(app, {"cid": "half", "datetime": T, "session_seq": 1, "session_start": T})
    with app.app_context():
        assert stitch_missing(db.session.connection()) == 1
        db.session.commit()
    assert _stored(app, "half") == [(T, 1, 0.0)]


def test_a_late_view_inside_a_stored_session_is_restitched_with_its_neighbours(app):
    _add(app, *({"cid": "late", "datetime": T + _minutes(m)} for m in (0, 40)))
    with app.app_context():
        stitch_missing(db.session.connection())
        db.session.commit()
    assert [seq for _, seq, _ in _stored(app, "late")] == [1, 1]
    _add(app, {"cid": "late", "datetime": T + _minutes(20)})  # bridges the 40-minute gap
    with app.app_context():
        assert stitch_missing(db.session.connection()) == 2  # the new view and the one after it
        db.session.commit()
        assert stitch_missing(db.session.connection()) == 0, "nothing left to do"
    assert _stored(app, "late") == [(T, 1, 0.0), (T, 2, 1200.0), (T, 3, 1200.0)]


def test_newest_views_finds_each_visitors_last_view_among_many(app):
    count = sessions.CHUNK + 20  # more visitors than one statement asks about
    rows = []
    for n in range(count):
        for m in (0, n % 7 + 1):
            rows.append({"cid": f"v{n}", "datetime": T + _minutes(m)})
    with app.app_context():
        db.session.execute(sa.insert(Visit), rows)
        stitch_missing(db.session.connection())
        wanted = [f"v{n}" for n in range(count)] + ["nobody"]
        found = newest_views(db.session.connection(), wanted, since=T)
        recent = newest_views(db.session.connection(), wanted, since=T + _minutes(5))
        db.session.commit()
    assert len(found) == count
    assert found["v3"] == Last(T + _minutes(4), T, 2)
    assert all(found[f"v{n}"].datetime == T + _minutes(n % 7 + 1) for n in range(count))
    # only views since the given time: those that could still continue a session
    assert set(recent) == {f"v{n}" for n in range(count) if n % 7 + 1 >= 5}


# ---- databases from before these columns ----------------------------------------------------


@pytest.fixture
def other_database_url(database_url, tmp_path) -> Iterator[str]:
    """A second, empty database on the same backend, for a test that breaks its schema."""
    backend = sa.engine.make_url(database_url).get_backend_name()
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        yield from _server_database(backend)


def test_a_version_1_database_gets_hosts_and_sessions_on_first_use(other_database_url, tmp_path):
    old = create_app({"SQLALCHEMY_DATABASE_URI": other_database_url})
    ensure_schema(old)
    with old.app_context():
        with db.engine.begin() as conn:
            for name in NEW_COLUMNS:
                conn.exec_driver_sql(f"ALTER TABLE visits DROP COLUMN {name}")
            # version 1's index had no id
            on_table = " ON visits" if conn.dialect.name == "mysql" else ""
            conn.exec_driver_sql(f"DROP INDEX ix_visits_cid_datetime{on_table}")
            conn.exec_driver_sql("CREATE INDEX ix_visits_cid_datetime ON visits (cid, datetime)")
            conn.execute(sa.update(SchemaVersion).values(version=1))
            conn.execute(
                sa.text(
                    "INSERT INTO visits (cid, datetime, doc_uri, referrer, is_bot) "
                    "VALUES (:cid, :when, :uri, :ref, :bot)"
                ),
                [
                    {
                        "cid": "old",
                        "when": T,
                        "uri": "https://Blog.example/",
                        "ref": None,
                        "bot": False,
                    },
                    {
                        "cid": "old",
                        "when": T + _minutes(3),
                        "uri": "https://blog.example/b",
                        "ref": "https://blog.example/",
                        "bot": False,
                    },
                    {
                        "cid": "old",
                        "when": T + _minutes(99),
                        "uri": "https://blog.example/",
                        "ref": "https://search.example/?q=1",
                        "bot": False,
                    },
                ],
            )
        db.engine.dispose()

    upgraded = create_app({"SQLALCHEMY_DATABASE_URI": other_database_url})
    ensure_schema(upgraded)
    with upgraded.app_context():
        assert db.session.scalar(sa.select(SchemaVersion.version)) == SCHEMA_VERSION == 2
        rows = db.session.execute(
            sa.select(
                Visit.doc_host,
                Visit.referrer_host,
                Visit.session_start,
                Visit.session_seq,
                Visit.session_gap,
            ).order_by(Visit.datetime)
        ).all()
        indexes = {
            i["name"]: i["column_names"] for i in sa.inspect(db.engine).get_indexes("visits")
        }
        db.engine.dispose()
    assert indexes["ix_visits_cid_datetime"] == ["cid", "datetime", "id"]
    assert [tuple(row) for row in rows] == [
        ("blog.example", None, T, 1, 0.0),
        ("blog.example", "blog.example", T, 2, 180.0),
        ("blog.example", "search.example", T + _minutes(99), 1, 0.0),
    ]
