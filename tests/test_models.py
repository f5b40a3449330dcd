"""Tables are created on first use and every model round-trips on every database."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from crumby import create_app, ingest
from crumby.database import CALENDAR_END, CALENDAR_START, SCHEMA_VERSION, ensure_schema
from crumby.extensions import db
from crumby.models import ApiToken, Calendar, Event, SchemaVersion, User, Visit
from crumby.sites import add_site

TABLES = {"calendar", "events", "sites", "users", "visits", "api_tokens", "crumby_schema"}
VISIT_COLUMNS = {
    "id",
    "site_id",
    "ip",
    "cid",
    "datetime",
    "doc_title",
    "doc_uri",
    "doc_path",
    "doc_enc",
    "referrer",
    "_referrer",
    "platform",
    "browser",
    "version",
    "screen_res",
    "screen_depth",
    "continent",
    "country",
    "subdivision_1",
    "subdivision_2",
    "city",
    "latitude",
    "longitude",
    "accuracy_radius",
    "time_zone",
    "lang",
    "_lang",
}
EVENT_COLUMNS = {
    "id",
    "site_id",
    "ip",
    "cid",
    "datetime",
    "doc_title",
    "doc_uri",
    "name",
    "value",
}


def _site(app, host: str = "example.com") -> int:
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, host).id


def test_tables_have_the_contract_columns(app):
    with app.app_context():
        inspector = sa.inspect(db.engine)
        assert TABLES <= set(inspector.get_table_names())
        columns = {t: {c["name"] for c in inspector.get_columns(t)} for t in TABLES}
    assert VISIT_COLUMNS <= columns["visits"]
    assert EVENT_COLUMNS <= columns["events"]
    assert {"id", "username", "password"} <= columns["users"]
    assert {"id", "host", "timezone", "public"} <= columns["sites"]
    assert "datetime" in columns["calendar"]


def test_every_row_belongs_to_a_site(app):
    with app.app_context():
        inspector = sa.inspect(db.engine)
        for table in ("visits", "events"):
            [site_id] = [c for c in inspector.get_columns(table) if c["name"] == "site_id"]
            assert site_id["nullable"] is False, table
        unique = inspector.get_unique_constraints("sites") + [
            i for i in inspector.get_indexes("sites") if i["unique"]
        ]
    assert ["host"] in [u["column_names"] for u in unique]


def test_reports_have_indexes_on_site_datetime_and_cid(app):
    with app.app_context():
        inspector = sa.inspect(db.engine)
        visit_indexes = [i["column_names"] for i in inspector.get_indexes("visits")]
        event_indexes = [i["column_names"] for i in inspector.get_indexes("events")]
    # every report reads one site's range; the pipeline one visitor's newest view on a site
    assert ["site_id", "datetime"] in visit_indexes
    assert any(cols[:3] == ["site_id", "cid", "datetime"] for cols in visit_indexes)
    assert ["site_id", "datetime"] in event_indexes and ["site_id", "cid"] in event_indexes


def test_calendar_covers_the_reportable_range(app):
    with app.app_context():
        first, last, count = db.session.execute(
            sa.select(
                sa.func.min(Calendar.datetime), sa.func.max(Calendar.datetime), sa.func.count()
            )
        ).one()
    assert first.date() == CALENDAR_START and last.date() == CALENDAR_END
    assert count == (CALENDAR_END - CALENDAR_START).days + 1


def test_schema_version_is_recorded_and_setup_is_idempotent(app):
    ensure_schema(app)
    with app.app_context():
        assert db.session.scalars(sa.select(SchemaVersion.version)).all() == [SCHEMA_VERSION]
    # a second app (another worker, a CLI command) finds everything in place
    other = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]})
    ensure_schema(other)
    with other.app_context():
        assert db.session.scalars(sa.select(SchemaVersion.version)).all() == [SCHEMA_VERSION]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Calendar)) == (
            (CALENDAR_END - CALENDAR_START).days + 1
        )
        db.engine.dispose()


def test_visit_round_trip_keeps_unicode_and_long_text(app):
    site_id = _site(app)
    when = dt.datetime(2026, 11, 23, 8, 15, 0)
    long_uri = "https://example.com/" + "p" * 2000 + "?q=1#top"
    row = {
        "ip": "2001:db8::1",
        "cid": "c" * 64,
        "datetime": when,
        "doc_title": "Café ☕ 😀 résumé",
        "doc_uri": long_uri,
        "doc_enc": "UTF-8",
        "referrer": "https://ref.example/",
        "_referrer": "https://hdr.example/",
        "platform": "Linux",
        "browser": "Firefox",
        "version": "132.0",
        "device": "desktop",
        "is_bot": False,
        "screen_res": "1920x1080",
        "screen_depth": "24-bit",
        "continent": "EU",
        "country": "FR",
        "subdivision_1": "Île-de-France",
        "subdivision_2": None,
        "city": "Paris",
        "latitude": 48.8566,
        "longitude": 2.3522,
        "accuracy_radius": 20,
        "time_zone": "Europe/Paris",
        "lang": "fr-FR",
        "_lang": "fr-FR,fr;q=0.9",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "winter",
    }
    assert ingest.store(app, visits=[row]) == (1, 0)
    with app.app_context():
        visit = db.session.scalars(sa.select(Visit)).one()
        assert visit.site_id == site_id
        assert visit.datetime == when
        assert visit.doc_title == "Café ☕ 😀 résumé"
        assert visit.doc_uri == long_uri
        assert visit.doc_path == "/" + "p" * 2000  # without query string and fragment
        assert (visit.doc_host, visit.referrer_host) == ("example.com", "ref.example")
        assert visit.subdivision_1 == "Île-de-France" and visit.subdivision_2 is None
        assert visit.latitude == 48.8566 and visit.accuracy_radius == 20
        assert (visit.utm_source, visit.utm_medium, visit.utm_campaign) == (
            "newsletter",
            "email",
            "winter",
        )
        assert visit.referrer_header == "https://hdr.example/"
        assert visit.lang_header == "fr-FR,fr;q=0.9"
        assert visit.is_bot is False
        raw = db.session.execute(
            sa.text('SELECT "_referrer", "_lang" FROM visits')
            if db.engine.dialect.name != "mysql"
            else sa.text("SELECT `_referrer`, `_lang` FROM visits")
        ).one()
        assert tuple(raw) == ("https://hdr.example/", "fr-FR,fr;q=0.9")


def test_event_round_trip(app):
    site_id = _site(app)
    when = dt.datetime(2026, 11, 23, 8, 16, 30)
    event = {
        "ip": "203.0.113.9",
        "cid": "abc",
        "datetime": when,
        "doc_uri": "https://example.com/",
        "doc_title": "Home",
        "name": "signup",
        "value": "pro plan ☕",
    }
    assert ingest.store(app, events=[event]) == (0, 1)
    with app.app_context():
        stored = db.session.scalars(sa.select(Event)).one()
        assert (stored.site_id, stored.name, stored.value, stored.cid) == (
            site_id,
            "signup",
            "pro plan ☕",
            "abc",
        )
        assert (stored.datetime, stored.doc_uri, stored.doc_title) == (
            when,
            "https://example.com/",
            "Home",
        )
        assert stored.is_bot is False


def test_user_and_token_round_trip_and_cascade(app):
    with app.app_context():
        user = User(username="ida", password="scrypt:hash")
        db.session.add(user)
        db.session.commit()
        db.session.add(ApiToken(user_id=user.id, token_hash="f" * 64))
        db.session.commit()
        db.session.expunge_all()
        loaded = db.session.scalars(sa.select(User)).one()
        assert loaded.username == "ida" and [t.token_hash for t in loaded.tokens] == ["f" * 64]
        # the database itself cascades, not only the ORM
        db.session.execute(sa.delete(User).where(User.id == loaded.id))
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_usernames_are_unique_in_the_database(app):
    import pytest

    with app.app_context():
        db.session.add(User(username="jo", password="x"))
        db.session.commit()
        db.session.add(User(username="jo", password="y"))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'wal.db'}"})
    with app.app_context():
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        db.engine.dispose()
