"""Sessions are stitched as visits are stored, so that reports count them with plain sums."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crumby import clock, create_app, ingest
from crumby.database import SCHEMA_VERSION, ensure_schema, fill_calendar
from crumby.extensions import db
from crumby.ingest import sessions
from crumby.ingest.sessions import Last, follow, newest_views, restitch
from crumby.models import SchemaVersion, Site, Visit, url_host, url_path
from crumby.sites import SiteInfo, add_site, all_sites, find_site

T = dt.datetime(2026, 3, 1, 12, 0, 0)
HOST = "s.example"
SESSION_COLUMNS = ("session_start", "session_seq", "session_gap")


def _minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


@pytest.fixture(autouse=True)
def site(app) -> SiteInfo:
    """Views are stored only for registered sites (contract section 8)."""
    return _add_site(app, HOST)


def _add_site(app, host: str) -> SiteInfo:
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, host)


def _stored(app, cid: str, site_id: int | None = None) -> list[tuple]:
    with app.app_context():
        query = (
            sa.select(Visit.session_start, Visit.session_seq, Visit.session_gap)
            .where(Visit.cid == cid)
            .order_by(Visit.datetime, Visit.id)
        )
        if site_id is not None:
            query = query.where(Visit.site_id == site_id)
        rows = db.session.execute(query).all()
    return [tuple(row) for row in rows]


def _store(app, *rows: dict) -> None:
    """Views of the registered site, stored (and stitched) through the ingest pipeline."""
    visits = [{"doc_uri": f"https://{HOST}/", **row} for row in rows]
    assert ingest.store(app, visits=visits) == (len(visits), 0)


def _unstitch(app) -> None:
    """Empty the session columns, as an import that does not stitch or a version 1 database has."""
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.update(Visit).values(dict.fromkeys(SESSION_COLUMNS)))


def _restitch(app, everything: bool = False) -> int:
    with app.app_context(), db.engine.begin() as conn:
        return restitch(conn, everything=everything)


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


def _view(app, client, when: dt.datetime, cid: str, url: str = f"https://{HOST}/") -> None:
    clock.pin(app, when)
    answer = client.post("/visit", json={"cid": cid, "dl": url})
    assert answer.status_code == 204


def test_hits_of_one_visitor_chain_into_one_session(app, client):
    for n, minutes in enumerate((0, 1, 2.5)):
        _view(app, client, T + _minutes(minutes), "ann", f"https://{HOST}/{n}")
    _view(app, client, T + _minutes(2), "bob")
    assert _stored(app, "ann") == [(T, 1, 0.0), (T, 2, 60.0), (T, 3, 90.0)]
    assert _stored(app, "bob") == [(T + _minutes(2), 1, 0.0)]


def test_the_tracker_continues_a_session_it_finds_in_the_database(app, client):
    now = T + _minutes(60)
    # cara's session started 50 minutes ago, her third view was 10 minutes ago; only the
    # views of the last 30 minutes are read, so where it started comes from the stored row
    _store(app, *({"cid": "cara", "datetime": now - _minutes(m)} for m in (50, 25, 10)))
    # dan was last here 31 minutes ago
    _store(app, {"cid": "dan", "datetime": now - _minutes(31)})
    for cid in ("cara", "dan"):
        _view(app, client, now, cid)
    assert _stored(app, "cara")[-1] == (now - _minutes(50), 4, 600.0)
    assert _stored(app, "dan")[-1] == (now, 1, 0.0)


def test_the_tracker_stores_the_hosts_and_path_of_page_and_referrer(app, client):
    _add_site(app, "shop.example")
    hit = {"cid": "x", "dl": "https://Shop.Example:8443/a?b#c", "dr": "https://user@news.example/x"}
    assert client.post("/visit", json=hit).status_code == 204
    with app.app_context():
        visit = db.session.scalars(sa.select(Visit)).one()
    assert (visit.doc_host, visit.referrer_host) == ("shop.example", "news.example")
    assert visit.doc_path == "/a"


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


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://x.example/a/b?c=1#d", "/a/b"),
        ("https://x.example", "/"),
        ("https://x.example?utm_source=x", "/"),
        ("https://x.example/%C3%A9t%C3%A9/", "/%C3%A9t%C3%A9/"),
        ("/only/a/path?q", "/only/a/path"),
        ("", None),
        (None, None),
        ("http://[::1", None),
    ],
)
def test_url_path(url, path):
    assert url_path(url) == path


def test_rows_stored_without_the_tracker_get_hosts_and_path_in_the_pipeline(app):
    _add_site(app, "a.example")
    row = {"cid": "x", "datetime": T, "doc_uri": "https://A.example/p?q=1", "referrer": None}
    assert ingest.store(app, visits=[row]) == (1, 0)
    with app.app_context():
        visit = db.session.scalars(sa.select(Visit)).one()
    assert (visit.doc_host, visit.doc_path, visit.referrer_host) == ("a.example", "/p", None)


# ---- stitching afterwards -----------------------------------------------------------------


def test_restitch_puts_views_without_session_columns_in_their_sessions(app):
    minutes = [0, 55, 10, 20, 90]  # 0-10-20, 55 and 90 are sessions
    _store(app, *({"cid": "imp", "datetime": T + _minutes(m)} for m in minutes))
    _store(app, {"cid": None, "datetime": T}, {"cid": None, "datetime": T + _minutes(1)})
    _unstitch(app)
    assert _stored(app, "imp")[0] == (None, None, None)
    assert _restitch(app) == 7
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
    assert _restitch(app) == 0, "nothing left to do"


def test_a_view_missing_any_session_column_counts_as_unstitched(app):
    _store(app, {"cid": "half", "datetime": T})
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.update(Visit).values(session_gap=None))
    assert _restitch(app) == 1
    assert _stored(app, "half") == [(T, 1, 0.0)]


def test_a_late_view_inside_a_stored_session_is_restitched_with_its_neighbours(app):
    _store(app, *({"cid": "late", "datetime": T + _minutes(m)} for m in (0, 40)))
    assert _stored(app, "late") == [(T, 1, 0.0), (T + _minutes(40), 1, 0.0)]
    # stored after the 40-minute view (another process, a delayed import): the pipeline
    # can only continue the newest view's session
    _store(app, {"cid": "late", "datetime": T + _minutes(20)})
    assert _stored(app, "late")[1] == (T + _minutes(40), 2, 0.0)
    assert _restitch(app) == 0, "every view has its columns"
    assert _restitch(app, everything=True) == 2  # the late view and the one after it
    assert _restitch(app, everything=True) == 0, "nothing left to do"
    assert _stored(app, "late") == [(T, 1, 0.0), (T, 2, 1200.0), (T, 3, 1200.0)]


def test_newest_views_finds_each_visitors_last_view_among_many(app, site):
    other = _add_site(app, "other.example")
    count = sessions.CHUNK + 20  # more visitors than one statement asks about
    rows = []
    for n in range(count):
        for m in (0, n % 7 + 1):
            rows.append({"cid": f"v{n}", "datetime": T + _minutes(m)})
    _store(app, *rows)
    # the same visitors later on another site: not their newest views on this one
    later = [{"cid": f"v{n}", "datetime": T + _minutes(9)} for n in range(0, count, 2)]
    _store(app, *({**row, "doc_uri": "https://other.example/"} for row in later))
    wanted = [f"v{n}" for n in range(count)] + ["nobody"]
    with app.app_context(), db.engine.connect() as conn:
        found = newest_views(conn, site.id, wanted, since=T)
        recent = newest_views(conn, site.id, wanted, since=T + _minutes(5))
        elsewhere = newest_views(conn, other.id, wanted, since=T)
    assert len(found) == count
    home = ("/", "(direct)") + (None,) * 10  # the session's attributes, from its entry
    assert found["v3"][:3] == Last(T + _minutes(4), T, 2)[:3]
    assert found["v3"].entry == home
    with app.app_context():
        ids = dict(
            db.session.execute(
                sa.select(Visit.cid, sa.func.max(Visit.id))
                .where(Visit.site_id == site.id)
                .group_by(Visit.cid)
            ).all()
        )
    assert {cid: view.id for cid, view in found.items()} == ids  # each one's stored id
    assert all(found[f"v{n}"].datetime == T + _minutes(n % 7 + 1) for n in range(count))
    # only views since the given time: those that could still continue a session
    assert set(recent) == {f"v{n}" for n in range(count) if n % 7 + 1 >= 5}
    assert {cid: (*view[:3], view.entry) for cid, view in elsewhere.items()} == {
        row["cid"]: (T + _minutes(9), T + _minutes(9), 1, home) for row in later
    }


# ---- sessions are per site ------------------------------------------------------------------


def test_one_visitor_on_two_sites_has_a_session_on_each(app, client, site):
    other = _add_site(app, "other.example")
    _view(app, client, T, "ann")
    _view(app, client, T + _minutes(1), "ann", "https://other.example/")
    _view(app, client, T + _minutes(2), "ann")
    _view(app, client, T + _minutes(3), "ann", "https://www.other.example/b")
    assert _stored(app, "ann", site.id) == [(T, 1, 0.0), (T, 2, 120.0)]
    assert _stored(app, "ann", other.id) == [(T + _minutes(1), 1, 0.0), (T + _minutes(1), 2, 120.0)]
    # restitching the whole history keeps them apart
    _unstitch(app)
    assert _restitch(app) == 4
    assert _stored(app, "ann", site.id) == [(T, 1, 0.0), (T, 2, 120.0)]
    assert _stored(app, "ann", other.id) == [(T + _minutes(1), 1, 0.0), (T + _minutes(1), 2, 120.0)]


# ---- databases written by version 1 ---------------------------------------------------------


#: version 1's column types where the databases differ
V1_TYPES = {
    "sqlite": {"id": "INTEGER NOT NULL PRIMARY KEY", "datetime": "DATETIME", "options": ""},
    "mysql": {
        "id": "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
        "datetime": "DATETIME",
        "options": " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    },
    "postgresql": {
        "id": "BIGSERIAL PRIMARY KEY",
        "datetime": "TIMESTAMP WITHOUT TIME ZONE",
        "options": "",
    },
}
#: version 1's visits and events: no site, no page path, no hosts, no session columns
V1_SCHEMA = [
    """CREATE TABLE visits (
        id {id}, ip VARCHAR(45), cid VARCHAR(64), datetime {datetime} NOT NULL,
        doc_title VARCHAR(512), doc_uri VARCHAR(2048), doc_enc VARCHAR(32),
        referrer VARCHAR(2048), _referrer VARCHAR(2048), platform VARCHAR(64),
        browser VARCHAR(64), version VARCHAR(32), device VARCHAR(16), is_bot BOOLEAN NOT NULL,
        screen_res VARCHAR(16), screen_depth VARCHAR(16), continent VARCHAR(2),
        country VARCHAR(2), subdivision_1 VARCHAR(128), subdivision_2 VARCHAR(128),
        city VARCHAR(128), latitude FLOAT, longitude FLOAT, accuracy_radius INTEGER,
        time_zone VARCHAR(64), lang VARCHAR(35), _lang VARCHAR(255), utm_source VARCHAR(255),
        utm_medium VARCHAR(255), utm_campaign VARCHAR(255), utm_term VARCHAR(255),
        utm_content VARCHAR(255)
    ){options}""",
    "CREATE INDEX ix_visits_datetime ON visits (datetime)",
    "CREATE INDEX ix_visits_cid_datetime ON visits (cid, datetime)",
    """CREATE TABLE events (
        id {id}, ip VARCHAR(45), cid VARCHAR(64), datetime {datetime} NOT NULL,
        doc_title VARCHAR(512), doc_uri VARCHAR(2048), name VARCHAR(255) NOT NULL,
        value VARCHAR(1024), is_bot BOOLEAN NOT NULL
    ){options}""",
    "CREATE INDEX ix_events_datetime ON events (datetime)",
    "CREATE INDEX ix_events_cid ON events (cid)",
    "CREATE TABLE crumby_schema (version INTEGER NOT NULL PRIMARY KEY){options}",
    "INSERT INTO crumby_schema (version) VALUES (1)",
]
V1_VISIT_COLUMNS = "id, cid, datetime, doc_uri, referrer, doc_title, browser, country, is_bot"
V1_EVENT_COLUMNS = "id, cid, datetime, doc_uri, name, value, is_bot"
OLD_INDEXES = {
    "visits": {"ix_visits_datetime", "ix_visits_cid_datetime"},
    "events": {"ix_events_datetime", "ix_events_cid"},
}
NEW_INDEXES = {
    "visits": {
        "ix_visits_site_datetime": ["site_id", "datetime"],
        "ix_visits_site_cid_datetime": ["site_id", "cid", "datetime", "id"],
    },
    "events": {
        "ix_events_site_datetime": ["site_id", "datetime"],
        "ix_events_site_cid": ["site_id", "cid"],
    },
}


def _version_1_database(url: str, visits: list[tuple], events: list[tuple]) -> None:
    """A database as version 1 left it, built with version 1's SQL, holding these rows.

    ``visits`` are (cid, minutes after T, doc_uri, referrer), ``events`` (cid, minutes,
    doc_uri, name). The tables version 2 did not change come from today's models.
    """
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            types = V1_TYPES[conn.dialect.name]
            for statement in V1_SCHEMA:
                conn.exec_driver_sql(statement.format(**types))
            for name in ("users", "api_tokens", "calendar"):
                db.metadata.tables[name].create(conn)
            fill_calendar(conn)
            conn.execute(
                sa.text(
                    "INSERT INTO visits (cid, datetime, doc_uri, referrer, doc_title, browser,"
                    " country, is_bot) VALUES (:cid, :when, :uri, :ref, 'Title', 'Firefox',"
                    " 'DE', :bot)"
                ),
                [
                    {"cid": cid, "when": T + _minutes(m), "uri": uri, "ref": ref, "bot": False}
                    for cid, m, uri, ref in visits
                ],
            )
            for cid, m, uri, name in events:
                conn.execute(
                    sa.text(
                        "INSERT INTO events (cid, datetime, doc_uri, name, value, is_bot)"
                        " VALUES (:cid, :when, :uri, :name, 'v', :bot)"
                    ),
                    {"cid": cid, "when": T + _minutes(m), "uri": uri, "name": name, "bot": False},
                )
    finally:
        engine.dispose()


def _snapshot(url: str) -> tuple[list[tuple], list[tuple]]:
    """Every version 1 column of every visit and event, by id."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            visits = conn.execute(sa.text(f"SELECT {V1_VISIT_COLUMNS} FROM visits ORDER BY id"))
            events = conn.execute(sa.text(f"SELECT {V1_EVENT_COLUMNS} FROM events ORDER BY id"))
            return [tuple(r) for r in visits], [tuple(r) for r in events]
    finally:
        engine.dispose()


def _upgraded(url: str):
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    ensure_schema(app)
    return app


def _indexes(conn, table: str) -> dict[str, list[str]]:
    return {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes(table)}


BLOG = "https://www.Blog.example"  # the same site as https://blog.example
SHOP = "https://shop.example"


def test_a_version_1_database_moves_to_a_site_per_host_on_first_use(other_database_url):
    visits = [  # (cid, minutes after T, doc_uri, referrer)
        ("ann", 0, BLOG + "/?utm_source=x", None),
        ("ann", 3, "https://blog.example/b?x=1#f", "https://www.blog.example/"),
        (None, 1, SHOP + "/x", None),
        ("both", 4, "https://blog.example/c", "https://search.example/?q=1"),
        ("both", 6, SHOP + "/cart?id=7", None),
        ("ann", 8, SHOP + "/", None),  # within 30 minutes, but on another site
        ("ann", 99, "https://blog.example/", None),
    ]
    events = [  # (cid, minutes after T, doc_uri, name)
        ("both", 7, SHOP + "/cart", "buy"),
        ("ann", 2, BLOG + "/", "like"),
        ("both", 5, None, "no page"),  # goes with its visitor's (first) site
    ]
    _version_1_database(other_database_url, visits, events)
    before = _snapshot(other_database_url)

    app = _upgraded(other_database_url)
    with app.app_context(), db.engine.connect() as conn:
        assert conn.scalar(sa.select(SchemaVersion.version)) == SCHEMA_VERSION
        sites = all_sites(conn)
        site_of = {site.host: site.id for site in sites}
        stored = conn.execute(
            sa.select(
                Visit.site_id,
                Visit.doc_path,
                Visit.doc_host,
                Visit.referrer_host,
                Visit.session_start,
                Visit.session_seq,
                Visit.session_gap,
            ).order_by(Visit.id)
        ).all()
        event_sites = conn.scalars(sa.text("SELECT site_id FROM events ORDER BY id")).all()
        event_sessions = conn.execute(
            sa.text(
                "SELECT doc_path, entry_page, entry_source, entry_browser FROM events ORDER BY id"
            )
        ).all()
        indexes = {table: _indexes(conn, table) for table in ("visits", "events")}
    # a site per host, www. folded: UTC and private (contract section 5)
    assert [(s.host, s.timezone, s.public) for s in sites] == [
        ("blog.example", "UTC", False),
        ("shop.example", "UTC", False),
    ]
    blog, shop = site_of["blog.example"], site_of["shop.example"]
    # nothing lost or changed, and every row on its site, with its path; sessions per site
    assert _snapshot(other_database_url) == before
    assert [tuple(row) for row in stored] == [
        (blog, "/", "www.blog.example", None, T, 1, 0.0),
        (blog, "/b", "blog.example", "www.blog.example", T, 2, 180.0),
        (shop, "/x", "shop.example", None, T + _minutes(1), 1, 0.0),
        (blog, "/c", "blog.example", "search.example", T + _minutes(4), 1, 0.0),
        (shop, "/cart", "shop.example", None, T + _minutes(6), 1, 0.0),
        (shop, "/", "shop.example", None, T + _minutes(8), 1, 0.0),
        (blog, "/", "blog.example", None, T + _minutes(99), 1, 0.0),
    ]
    assert event_sites == [shop, blog, blog]
    # each event has its page's path and the attributes of the session it falls in
    assert [tuple(row) for row in event_sessions] == [
        ("/cart", "/cart", "(direct)", "Firefox"),
        ("/", "/", "(direct)", "Firefox"),
        (None, "/c", "search.example", "Firefox"),
    ]
    # reports' indexes lead with the site; version 1's are gone
    for table, wanted in NEW_INDEXES.items():
        assert {name: indexes[table].get(name) for name in wanted} == wanted
        assert not OLD_INDEXES[table] & set(indexes[table]), table

    # the upgraded database takes new views, which continue the stored sessions
    ingest.store(
        app, visits=[{"cid": "ann", "datetime": T + _minutes(100), "doc_uri": BLOG + "/d"}]
    )
    assert _stored(app, "ann", blog)[-1] == (T + _minutes(99), 2, 60.0)
    # and a second start (another worker, a restart) finds nothing left to do
    again = _upgraded(other_database_url)
    with again.app_context(), db.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(Site)) == 2
        assert conn.scalar(sa.select(sa.func.count()).select_from(Visit)) == len(visits) + 1
    for each in (app, again):
        with each.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    ("hosts", "fallback"),
    [
        (["blog.example"], "blog.example"),
        (["blog.example", "shop.example"], "unattributed.invalid"),
    ],
)
def test_version_1_rows_without_a_host_are_kept(other_database_url, hosts, fallback):
    """A page without a host, an event without a page of a visitor never seen: nothing is lost.

    They go to the only site, or to ``unattributed.invalid`` when there are several.
    """
    visits = [("v", n, f"https://{host}/", None) for n, host in enumerate(hosts)]
    visits.append(("local", 10, "file:///C:/Users/me/page.html", None))
    events = [("ghost", 11, None, "no page, no visits"), ("local", 12, "about:blank", "x")]
    _version_1_database(other_database_url, visits, events)
    before = _snapshot(other_database_url)

    app = _upgraded(other_database_url)
    with app.app_context(), db.engine.connect() as conn:
        site_of = {site.host: site for site in all_sites(conn)}
        visit_sites = conn.scalars(sa.select(Visit.site_id).order_by(Visit.id)).all()
        paths = conn.scalars(sa.select(Visit.doc_path).order_by(Visit.id)).all()
        event_sites = conn.scalars(sa.text("SELECT site_id FROM events ORDER BY id")).all()
    with app.app_context():
        db.engine.dispose()
    assert set(site_of) == {*hosts, fallback}
    assert (site_of[fallback].timezone, site_of[fallback].public) == ("UTC", False)
    assert visit_sites == [site_of[host].id for host in hosts] + [site_of[fallback].id]
    assert paths == ["/"] * len(hosts) + ["/C:/Users/me/page.html"]
    assert event_sites == [site_of[fallback].id] * 2
    assert _snapshot(other_database_url) == before


def test_version_1_hosts_that_are_not_plain_names_become_sites_one_can_name(
    other_database_url,
):
    """Pages served from a Docker service name or an IPv6 address: their sites can be found."""
    visits = [("a", 0, "http://my_app.internal:8000/x", None), ("b", 1, "http://[::1]:5000/", None)]
    _version_1_database(other_database_url, visits, [])
    app = _upgraded(other_database_url)
    with app.app_context(), db.engine.connect() as conn:
        sites = {site.host: site for site in all_sites(conn)}
        found = [find_site(conn, text) for text in ("my_app.internal", "MY_APP.internal", "::1")]
        visit_sites = conn.scalars(sa.select(Visit.site_id).order_by(Visit.id)).all()
    with app.app_context():
        db.engine.dispose()
    assert set(sites) == {"my_app.internal", "::1"}
    assert found == [sites["my_app.internal"], sites["my_app.internal"], sites["::1"]]
    assert visit_sites == [sites["my_app.internal"].id, sites["::1"].id]
