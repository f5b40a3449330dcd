"""Databases as an older Crumby left them: the shared steps of the migration tests.

A migration test builds today's schema, stores what it needs, undoes what
one migration step adds (drops its column or table), then ``rewind``s the
recorded version to the one that step upgrades from; ``upgraded`` is the app
a newer Crumby starts on it, checked to be at the newest version. Steps are
named by function, never by number, since every branch appends its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import Connection

from crumby import clock, create_app
from crumby.database import MIGRATIONS, SCHEMA_VERSION, ensure_schema
from crumby.extensions import db
from crumby.models import SchemaVersion


def config(database_url: str, tmp_path: Path) -> dict[str, Any]:
    """The settings of an app on ``database_url`` (no GeoIP file)."""
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "x",
        "GEOIP2_DATABASE_NAME": str(tmp_path / "none.mmdb"),
    }


def rewind(connection: Connection, step: Callable[[Connection], None]) -> None:
    """Record the schema version that ``step`` upgrades from."""
    version = MIGRATIONS.index(step) + 1
    connection.execute(sa.update(SchemaVersion).values(version=version))


def upgraded(settings: dict[str, Any], now: dt.datetime | None = None) -> Flask:
    """A new app on the older database, after its upgrade (checked to be the newest version)."""
    app = create_app(settings)
    if now is not None:
        clock.pin(app, now)
    ensure_schema(app)
    with app.app_context():
        assert db.session.scalar(sa.select(SchemaVersion.version)) == SCHEMA_VERSION
        db.session.remove()
    return app


def close(app: Flask) -> None:
    """Let go of an app's connections, so that the next app finds the database as left."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
