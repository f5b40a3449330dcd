"""SQLite with its disk full: hits answer 503 JSON, 2xx = rows, and storing resumes.

A real full disk needs a small filesystem the test may mount; SQLite's own
``max_page_count`` makes the database file unable to grow by the same error
(SQLITE_FULL, "database or disk is full") on any machine, through the same
code paths: the writer, its transaction and the answer each request gets.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from crumby import create_app
from crumby.database import ensure_schema
from crumby.extensions import db
from crumby.sites import add_site

#: pages the database may grow by before it is "full"
HEADROOM_PAGES = 4


def full_disk_app(tmp_path: Path) -> tuple[Flask, list[int]]:
    """An app whose SQLite file may not grow past ``limit[0]`` pages (0: no limit yet)."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'full.db'}",
            "SECRET_KEY": "full",
            "GEOIP2_DATABASE_NAME": str(tmp_path / "no-geoip.mmdb"),
            "HIT_RATE_LIMIT": None,
        }
    )
    ensure_schema(app)
    limit = [0]
    with app.app_context():
        with db.engine.begin() as connection:
            add_site(connection, "full.example")

        @sa.event.listens_for(db.engine, "connect")
        def cap(dbapi_connection, _record):
            if limit[0]:
                dbapi_connection.execute(f"PRAGMA max_page_count = {int(limit[0])}")

        db.engine.dispose()  # every connection from now on is capped
    return app, limit


def stored(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.text("SELECT COUNT(*) FROM visits"))


def test_a_full_disk_answers_503_json_and_stores_exactly_the_2xx_hits(tmp_path):
    app, limit = full_disk_app(tmp_path)
    with app.app_context():
        pages = db.session.scalar(sa.text("PRAGMA page_count"))
        db.session.remove()
        db.engine.dispose()
    limit[0] = pages + HEADROOM_PAGES
    client = app.test_client()
    answers = []
    title = "x" * 400  # rows big enough to fill a few pages quickly
    for n in range(400):
        answer = client.post(
            "/visit", data={"dl": f"https://full.example/p{n}", "dt": f"{title}{n}"}
        )
        answers.append(answer)
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {204, 503}, sorted(set(statuses))
    assert statuses.index(503) > 0  # the first hits fitted
    for answer in answers:
        if answer.status_code == 503:
            assert answer.is_json and answer.get_json()["error"]
            assert "Retry-After" in answer.headers
            assert "Traceback" not in answer.get_data(as_text=True)
    # 2xx = rows: nothing refused was stored, nothing acknowledged was lost
    limit[0] = 0
    with app.app_context():
        db.engine.dispose()
    assert stored(app) == statuses.count(204)
    # with room again, hits are stored again
    assert client.post("/visit", data={"dl": "https://full.example/after"}).status_code == 204
    assert stored(app) == statuses.count(204) + 1
