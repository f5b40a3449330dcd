"""The rollups most reports read always agree with the stored views.

Whatever reaches or leaves the views (hits in any order, bots, a log import,
``forget``, ``prune``, a time zone change, a deleted site), every row of
``visitor_days`` and ``session_days`` equals the same fold computed here in
Python from the views left: per site and local day of the site's zone, the
non-bot views of each visitor and device/place, and the sessions, second views
and seconds of the sessions that began that day, by their entry's attributes.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crumby import create_app, ingest
from crumby.cli import cli
from crumby.database import _rollups, ensure_schema
from crumby.extensions import db
from crumby.ingest.rollups import SESSION_DAYS, VISITOR_DAYS
from crumby.lifecycle.deletion import forget, prune
from crumby.models import SessionDay, Site, Visit, VisitorDay
from crumby.reporting import get_query, parameters
from crumby.reporting.filters import parse_filters
from crumby.reporting.rendering import render
from crumby.sites import SiteInfo, add_site, change_site, delete_site
from tests import upgrades

T = dt.datetime(2026, 3, 28, 12, 0)  # the weekend Europe's clocks spring forward
BROWSERS = ["Firefox", "Chrome", None]
PLACES = [("DE", "Berlin", "Berlin"), ("US", "California", "San Jose"), (None, None, None)]


COLUMNS = VISITOR_DAYS.columns
ENTRY = SESSION_DAYS.columns


def _local(when: dt.datetime, zone: str) -> dt.date:
    return when.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).date()


def _expected(app) -> tuple[Counter, dict]:
    """The visitor days and session days the stored views make, folded here from scratch."""
    table = Visit.__table__
    with app.app_context():
        zones = dict(db.session.execute(sa.select(Site.id, Site.timezone)).all())
        views = db.session.execute(
            sa.select(
                Visit.site_id,
                Visit.datetime,
                Visit.session_start,
                Visit.session_seq,
                Visit.session_gap,
                *(table.c[c] for c in COLUMNS + ENTRY),
            ).where(Visit.is_bot.is_(False))
        ).all()
    days: Counter = Counter()
    sessions: dict = {}
    for site_id, when, start, seq, gap, *values in views:
        zone = zones[site_id]
        days[(site_id, _local(when, zone), *values[: len(COLUMNS)])] += 1
        if dt.timedelta(0) <= when - start < dt.timedelta(days=1):
            key = (site_id, _local(start, zone), *values[len(COLUMNS) :])
            n, second, seconds = sessions.get(key, (0, 0, 0.0))
            sessions[key] = (n + (seq == 1), second + (seq == 2), seconds + gap)
    return days, {key: (n, c, round(s, 3)) for key, (n, c, s) in sessions.items()}


def _stored(app) -> tuple[Counter, dict]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(
                VisitorDay.site_id,
                VisitorDay.day,
                *(VisitorDay.__table__.c[c] for c in COLUMNS),
                VisitorDay.views,
            )
        ).all()
        session_rows = db.session.execute(
            sa.select(
                SessionDay.site_id,
                SessionDay.day,
                *(SessionDay.__table__.c[c] for c in ENTRY),
                SessionDay.sessions,
                SessionDay.continued,
                SessionDay.seconds,
            )
        ).all()
    days: Counter = Counter()
    for site_id, day, *values, views in rows:
        days[(site_id, day.date(), *values)] += views
    sessions: dict = {}
    for site_id, day, *values, n, second, seconds in session_rows:
        key = (site_id, day.date(), *values)
        assert key not in sessions, "one row per site, day and entry"
        sessions[key] = (n, second, round(seconds, 3))
    return days, sessions


def _agree(app) -> None:
    expected, stored = _expected(app), _stored(app)
    assert stored[0] == expected[0]
    assert stored[1] == expected[1]
    assert sum(stored[0].values()) > 0 and sum(n for n, _c, _s in stored[1].values()) > 0


def _random_views(rng: random.Random, host: str, count: int) -> list[dict]:
    views = []
    for _ in range(count):
        place = rng.choice(PLACES)
        views.append(
            {
                "cid": rng.choice([f"c{rng.randrange(12)}", None]),
                # half in three hours: sessions of several views
                "datetime": T
                + dt.timedelta(
                    minutes=rng.choice([rng.randrange(-3 * 1440, 3 * 1440), rng.randrange(180)])
                ),
                "referrer": rng.choice([None, "https://www.google.com/", "https://news.example/"]),
                "utm_campaign": rng.choice([None, "spring"]),
                "doc_uri": f"https://{host}/{rng.choice(['', 'a', 'b'])}",
                "browser": rng.choice(BROWSERS),
                "version": rng.choice(["1.0", "2.0"]),
                "platform": rng.choice(["Linux", "Windows"]),
                "device": rng.choice(["desktop", "mobile"]),
                "lang": rng.choice(["en-US", "de", None]),
                "screen_res": rng.choice(["1920x1080", None]),
                "country": place[0],
                "subdivision_1": place[1],
                "city": place[2],
                "is_bot": rng.random() < 0.1,
            }
        )
    return views


@pytest.fixture
def sites(app) -> tuple[SiteInfo, SiteInfo]:
    with app.app_context(), db.engine.begin() as conn:
        return (
            add_site(conn, "berlin.example", "Europe/Berlin"),
            add_site(conn, "kolkata.example", "Asia/Kolkata"),
        )


def test_rollups_equal_the_views_after_hits_imports_deletions_and_a_zone_change(
    app, sites, tmp_path: Path, cli_env
):
    rng = random.Random(7)
    # hits in batches of any order, as concurrent writers would store them
    for _ in range(6):
        batch = _random_views(rng, "berlin.example", 40) + _random_views(rng, "kolkata.example", 20)
        ingest.store(app, batch)
    _agree(app)

    # a log import (anonymous visitor ids of the address and User-Agent)
    stamp = (T + dt.timedelta(hours=23)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    log = tmp_path / "access.log"
    log.write_text(
        "".join(
            f'198.51.100.{n} - - [{stamp}] "GET /p{n} HTTP/1.1" 200 5 "-" "Mozilla/5.0 '
            f'(X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"\n'
            for n in range(5)
        )
    )
    result = CliRunner(env={**cli_env, "CRUMBY_SECRET_KEY": "s"}).invoke(
        cli, ["ingest-log", "--site", "berlin.example", str(log)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    _agree(app)

    with app.app_context(), db.engine.begin() as conn:
        assert forget(conn, "c3").visits > 0
    _agree(app)

    with app.app_context(), db.engine.connect() as conn:
        assert prune(conn, T - dt.timedelta(hours=30)).visits > 0
    _agree(app)

    # a new zone moves every view's local day: the site's days are rebuilt
    before = _stored(app)
    with app.app_context(), db.engine.begin() as conn:
        change_site(conn, "berlin.example", timezone="America/New_York")
    assert _stored(app) != before
    _agree(app)

    with app.app_context(), db.engine.begin() as conn:
        delete_site(conn, "kolkata.example")
    _agree(app)
    assert {key[0] for key in _stored(app)[0]} == {sites[0].id}
    assert {key[0] for key in _stored(app)[1]} == {sites[0].id}


def test_rebuild_puts_back_what_was_changed_by_hand(app, sites, runner):
    ingest.store(app, _random_views(random.Random(3), "berlin.example", 50))
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.delete(VisitorDay).where(VisitorDay.views == 1))
        conn.execute(sa.update(VisitorDay).values(views=VisitorDay.views + 5))
        conn.execute(sa.update(SessionDay).values(sessions=SessionDay.sessions + 1))
    assert _stored(app) != _expected(app)

    result = runner.invoke(cli, ["rebuild", "--site", "berlin.example"])
    assert result.exit_code == 0, result.output
    assert "berlin.example:" in result.output and "views counted into the rollups" in result.output
    _agree(app)

    result = runner.invoke(cli, ["rebuild", "--site", "nowhere.example"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: no such site: nowhere.example"]


def _sql(app, site: SiteInfo, name: str, **filters: str) -> str:
    with app.app_context():
        query = get_query("public", name)
        return render(
            query.path.read_text(),
            db.engine.dialect.name,
            site,
            T.date(),
            T.date(),
            T,
            parse_filters(filters),
            parameters.defaults(query),
        ).sql


@pytest.mark.parametrize("name", ["browsers", "locations", "visits", "screens"])
def test_reports_of_visitors_read_visitor_days_unless_a_filter_needs_the_views(app, sites, name):
    site = sites[0]
    assert "FROM visitor_days v" in _sql(app, site, name)
    assert "FROM visitor_days v" in _sql(app, site, name, country="DE", browser="Firefox")
    for needs_views in ({"page": "/a"}, {"source": "google.com"}, {"country": "DE", "page": "/"}):
        sql = _sql(app, site, name, **needs_views)
        assert "visitor_days" not in sql and "FROM visits v" in sql


def test_the_upgrade_builds_the_rollups_for_the_views_stored_before(other_database_url, tmp_path):
    settings = upgrades.config(other_database_url, tmp_path)
    old = create_app(settings)
    ensure_schema(old)
    with old.app_context(), db.engine.begin() as conn:
        add_site(conn, "berlin.example", "Europe/Berlin")
    ingest.store(old, _random_views(random.Random(5), "berlin.example", 80))
    with old.app_context(), db.engine.begin() as conn:
        VisitorDay.__table__.drop(conn)
        SessionDay.__table__.drop(conn)
        upgrades.rewind(conn, _rollups)
    upgrades.close(old)

    app = upgrades.upgraded(settings)
    _agree(app)
    upgrades.close(app)
