"""Each view's time until the next view of its session (``next_gap``), kept as views are stored,
re-stitched and deleted: what the exit_pages and time_on_page reports count."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crumby import create_app, ingest
from crumby.database import _next_gaps, ensure_schema
from crumby.extensions import db
from crumby.ingest.sessions import restitch, restitch_visitors
from crumby.lifecycle.deletion import forget, prune
from crumby.models import Visit
from crumby.reporting import get_query, run_query
from crumby.sites import add_site
from tests import upgrades

T = dt.datetime(2026, 3, 1, 12, 0, 0)
HOST = "s.example"


def _minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


@pytest.fixture(autouse=True)
def site(app):
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, HOST)


def _view(cid: str | None, minutes: float, path: str = "/") -> dict:
    return {"cid": cid, "datetime": T + _minutes(minutes), "doc_uri": f"https://{HOST}{path}"}


def _store(app, *views: dict) -> None:
    assert ingest.store(app, visits=list(views)) == (len(views), 0)


def _gaps(app, cid: str | None = "ann") -> list[tuple[int, float | None]]:
    """(session_seq, next_gap) of a visitor's views, in time order."""
    with app.app_context():
        where = Visit.cid.is_(None) if cid is None else Visit.cid == cid
        rows = db.session.execute(
            sa.select(Visit.session_seq, Visit.next_gap)
            .where(where)
            .order_by(Visit.datetime, Visit.id)
        ).all()
        db.session.remove()
    return [tuple(row) for row in rows]


#: ann: a session of three views (5 and 7 minutes apart), then after 40 minutes one of two
ANN = [("ann", 0), ("ann", 5), ("ann", 12), ("ann", 52), ("ann", 53.5)]
ANN_GAPS = [(1, 300.0), (2, 420.0), (3, None), (1, 90.0), (2, None)]


def test_views_stored_in_one_batch_get_the_gap_until_their_sessions_next_view(app):
    _store(app, *(_view(cid, m) for cid, m in ANN))
    assert _gaps(app) == ANN_GAPS


def test_a_view_stored_later_fills_in_its_stored_predecessors_gap(app):
    for cid, m in ANN:  # one hit at a time, as the tracker sends them
        _store(app, _view(cid, m))
    assert _gaps(app) == ANN_GAPS


def test_visitors_and_sites_do_not_mix(app):
    with app.app_context(), db.engine.begin() as conn:
        add_site(conn, "other.example")
    _store(
        app,
        _view("ann", 0),
        _view("bob", 1),
        {**_view("ann", 2), "doc_uri": "https://other.example/"},  # ann on another site
        _view("ann", 3),
        _view(None, 4),
        _view(None, 5),  # no visitor id: a session of its own each
    )
    with app.app_context():
        rows = db.session.execute(
            sa.select(Visit.cid, Visit.doc_host, Visit.next_gap).order_by(Visit.datetime)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("ann", HOST, 180.0),
        ("bob", HOST, None),
        ("ann", "other.example", None),
        ("ann", HOST, None),
        (None, HOST, None),
        (None, HOST, None),
    ]


def test_restitching_keeps_next_gaps_right(app):
    _store(app, *(_view(cid, m) for cid, m in ANN))
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.update(Visit).values(next_gap=None))
        assert restitch(conn, everything=True) == 0  # the session columns were right
    assert _gaps(app) == ANN_GAPS  # the gaps are back all the same
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.update(Visit).values(next_gap=1.0))
        restitch_visitors(conn, [(conn.scalar(sa.select(Visit.site_id).limit(1)), "ann")])
    assert _gaps(app) == ANN_GAPS


def test_a_late_view_is_linked_where_restitching_puts_it(app):
    _store(app, _view("ann", 0), _view("ann", 40))
    _store(app, _view("ann", 20))  # stored late: the pipeline continues the newest view
    with app.app_context(), db.engine.begin() as conn:
        restitch(conn, everything=True)
    assert _gaps(app) == [(1, 1200.0), (2, 1200.0), (3, None)]


def test_forgetting_and_pruning_keep_the_gaps_of_the_views_left(app):
    _store(app, *(_view(cid, m) for cid, m in ANN), _view("bob", 1), _view("bob", 11))
    with app.app_context(), db.engine.begin() as conn:
        forget(conn, "bob")
    assert _gaps(app, "bob") == []
    with app.app_context(), db.engine.connect() as conn:
        prune(conn, before=T + _minutes(1))  # ann's first view goes
    # the second view is the entry now, with the third after it
    assert _gaps(app) == [(1, 420.0), (2, None), (1, 90.0), (2, None)]


def test_a_database_from_before_next_gaps_is_upgraded(other_database_url, tmp_path):
    settings = upgrades.config(other_database_url, tmp_path)
    old = create_app(settings)
    ensure_schema(old)
    with old.app_context():
        with db.engine.begin() as conn:
            add_site(conn, HOST)
        _store(old, *(_view(cid, m) for cid, m in ANN))
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE visits DROP COLUMN next_gap")
            upgrades.rewind(conn, _next_gaps)
    upgrades.close(old)

    upgraded = upgrades.upgraded(settings)
    assert _gaps(upgraded) == ANN_GAPS
    with upgraded.app_context(), db.engine.begin() as conn:
        _next_gaps(conn)  # running the step again changes nothing (a branch merge may replay it)
    assert _gaps(upgraded) == ANN_GAPS
    with upgraded.app_context():
        db.engine.dispose()


def _report(app, site, name: str) -> tuple[list[str], list[list]]:
    with app.app_context():
        result = run_query(get_query("public", name), site, T.date(), T.date(), use_cache=False)
    return result.columns, result.data


def test_the_exit_pages_and_time_on_page_reports_by_hand(app, site):
    _store(
        app,
        _view("ann", 0, "/"),
        _view("ann", 5, "/menu?x=1"),  # 5 minutes on /
        _view("ann", 12, "/order"),  # 7 minutes on /menu; /order is ann's first exit
        _view("ann", 52, "/menu"),  # a new session
        _view("ann", 53.5, "/"),  # 1.5 minutes on /menu; / is the second exit
        _view("bob", 30, "/menu"),  # one view: an exit, no time
        {**_view("bot", 31, "/menu"), "is_bot": True},
    )
    columns, rows = _report(app, site, "exit_pages")
    assert columns == ["page", "exits", "views", "exit_rate"]
    third = pytest.approx(1 / 3, abs=1e-3)  # MySQL keeps 4 decimals
    assert rows == [["/", 1, 2, 0.5], ["/menu", 1, 3, third], ["/order", 1, 1, 1]]
    columns, rows = _report(app, site, "time_on_page")
    assert columns == ["page", "views", "timed", "avg_time"]
    assert rows == [["/menu", 3, 2, 255.0], ["/", 2, 1, 300.0], ["/order", 1, 0, None]]
