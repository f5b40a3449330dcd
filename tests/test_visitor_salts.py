"""Anonymous visitor ids come from a daily salt in the database, shared by every process.

Without ``cid`` a hit's visitor id is an HMAC of the day's salt, the site, the
address and the User-Agent. Two apps on one database stand for two gunicorn
workers (or a worker and ``crumby ingest-log``): they must give a visitor the
same id without any SECRET_KEY, and a new day's first hit must delete the
salts that are no longer kept.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from crumby import clock, create_app
from crumby.database import ensure_schema
from crumby.extensions import db
from crumby.ingest.salts import SALTS, Salts, anonymous_id
from crumby.models import Event, Visit, VisitorSalt
from crumby.sites import add_site
from tests import upgrades

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
DAY = dt.datetime(2026, 11, 23, 10, 0, 0)


def make_app(url: str, **extra):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "GEOIP2_DATABASE_NAME": "/nonexistent.mmdb",
            "HIT_RATE_LIMIT": None,
            **extra,
        }
    )
    clock.pin(app, DAY)
    return app


@pytest.fixture
def apps(database_url):
    """Two apps (two "processes") without SECRET_KEY on one fresh database, one site."""
    first, second = make_app(database_url), make_app(database_url)
    ensure_schema(first)
    with first.app_context():
        connection = db.session.connection()
        for table in ("visits", "events", "visitor_salts", "import_keys"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
        connection.execute(sa.text("DELETE FROM sites"))
        add_site(connection, "salt.example")
        db.session.commit()
    yield first, second
    for app in (first, second):
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def hit(app, ip: str, path: str = "/", kind: str = "visit") -> None:
    data = {"dl": f"https://salt.example{path}"}
    if kind == "event":
        data["en"] = "play"
    response = app.test_client().post(
        f"/{kind}", json=data, headers={"User-Agent": CHROME}, environ_base={"REMOTE_ADDR": ip}
    )
    assert response.status_code == 204


def rows(app, model=Visit) -> list:
    with app.app_context():
        found = db.session.scalars(sa.select(model.cid).order_by(model.id)).all()
        db.session.remove()
    return found


def salts(app) -> dict[dt.date, str]:
    with app.app_context():
        found = dict(db.session.execute(sa.select(VisitorSalt.day, VisitorSalt.salt)).all())
        db.session.remove()
    return found


def test_two_processes_without_secret_key_give_a_visitor_one_id(apps):
    first, second = apps
    assert first.config.get("SECRET_KEY") is None
    hit(first, "203.0.113.7", "/a")
    hit(second, "203.0.113.7", "/b")
    hit(second, "203.0.113.7", "/c", kind="event")
    hit(first, "203.0.113.8", "/a")  # another address: another visitor
    a, b, other = rows(first)
    assert a.startswith("anon-") and a == b and other != a
    assert rows(first, Event) == [a]
    # the id is the HMAC of the one stored salt of the day, the site, address and browser
    (day, salt), *more = salts(first).items()
    assert more == [] and day == DAY.date()
    with first.app_context():
        site_id = db.session.scalar(sa.text("SELECT id FROM sites"))
        db.session.remove()
    assert a == anonymous_id(bytes.fromhex(salt), site_id, "203.0.113.7", CHROME)


def test_a_new_day_gets_a_new_salt_and_the_old_one_is_deleted(apps):
    first, second = apps
    hit(first, "203.0.113.7")
    old_salt = salts(first)[DAY.date()]
    for app in apps:
        clock.pin(app, DAY + dt.timedelta(days=1))
    hit(second, "203.0.113.7")
    hit(first, "203.0.113.7")
    yesterday, today, today_again = rows(first)
    assert today == today_again != yesterday
    # yesterday's salt is gone: yesterday's ids can no longer be worked out from an address
    kept = salts(first)
    assert list(kept) == [DAY.date() + dt.timedelta(days=1)]
    assert old_salt not in kept.values()


def test_visitor_salt_days_keeps_past_days_for_log_imports(database_url):
    app = make_app(database_url, VISITOR_SALT_DAYS=3)
    ensure_schema(app)
    with app.app_context():
        connection = db.session.connection()
        connection.execute(sa.text("DELETE FROM visitor_salts"))
        db.session.commit()
    try:
        for offset in range(5):
            clock.pin(app, DAY + dt.timedelta(days=offset))
            pipeline_salt(app, (DAY + dt.timedelta(days=offset)).date())
        kept = sorted(salts(app))
        assert kept == [(DAY + dt.timedelta(days=n)).date() for n in (2, 3, 4)]
    finally:
        with app.app_context():
            db.engine.dispose()


def pipeline_salt(app, day: dt.date) -> bytes:
    """The salt of ``day`` as the app's pipeline gets it, committed."""
    from crumby.ingest import pipeline_for

    with app.app_context():
        engine = db.engine
    pipeline = pipeline_for(app, engine)
    pending: dict = {}
    with engine.begin() as connection:
        salt = pipeline.salts.salt(connection, day, pending)
    pipeline.salts.committed(pending)
    return salt


def test_concurrent_first_hits_of_a_day_agree_on_one_salt(database_url):
    """Many transactions creating the same day's salt at once all end with the winner's."""
    app = make_app(database_url)
    ensure_schema(app)
    with app.app_context():
        engine = db.engine
    with engine.begin() as connection:
        connection.execute(SALTS.delete())
    day = dt.date(2026, 11, 30)
    barrier = threading.Barrier(6)
    got: list[bytes] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            salts_here = Salts(1, lambda: day)
            barrier.wait()
            with engine.begin() as connection:
                # as in a batch: the transaction has read something before
                connection.execute(sa.text("SELECT COUNT(*) FROM sites")).scalar()
                got.append(salts_here.salt(connection, day, {}))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        assert len(got) == 6 and len(set(got)) == 1
        assert salts(app) == {day: got[0].hex()}
    finally:
        engine.dispose()


def test_a_database_from_before_visitor_salts_gets_the_table(database_url):
    from crumby.database import SCHEMA_VERSION, _v6_visitor_salts
    from crumby.models import SchemaVersion

    app = make_app(database_url)
    ensure_schema(app)
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE visitor_salts"))
        upgrades.rewind(connection, _v6_visitor_salts)
    with app.app_context():
        db.engine.dispose()
    upgraded = make_app(database_url)
    ensure_schema(upgraded)
    try:
        with upgraded.app_context():
            assert "visitor_salts" in sa.inspect(db.engine).get_table_names()
            assert db.session.scalar(sa.select(SchemaVersion.version)) == SCHEMA_VERSION
            db.session.remove()
        assert pipeline_salt(upgraded, DAY.date())  # and it works
    finally:
        with upgraded.app_context():
            db.engine.dispose()
