"""GeoIP: city columns from a MaxMind-format file, one reader per app, picked up when replaced."""

from __future__ import annotations

import logging
import os

import pytest
from sqlalchemy import select

from crumby import geo
from crumby.extensions import db
from crumby.models import Visit
from crumby.sites import add_site
from tests.mmdb_factory import PLACES, write_city_database

LONDON = "81.2.69.160"
SAN_FRANCISCO = "2001:db8:1::abcd"
PAGE = "https://blog.example/"


@pytest.fixture(autouse=True)
def site(app):
    """Hits are stored only for registered sites (contract section 8): register the pages' host."""
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, "blog.example")


@pytest.fixture(autouse=True)
def look_at_the_file_on_every_lookup(monkeypatch):
    """Crumby looks for a replaced file once a second; tests replace it at once."""
    monkeypatch.setattr(geo, "RECHECK_SECONDS", 0.0)


def use_database(app, path) -> None:
    app.config["GEOIP2_DATABASE_NAME"] = str(path)


def test_lookup_gives_the_visit_geo_columns(app, tmp_path):
    use_database(app, write_city_database(tmp_path / "city.mmdb"))
    assert geo.lookup(LONDON, app) == {
        "continent": "EU",
        "country": "GB",
        "subdivision_1": "England",
        "subdivision_2": "Greater London",
        "city": "London",
        "latitude": 51.5142,
        "longitude": -0.0931,
        "accuracy_radius": 10,
        "time_zone": "Europe/London",
    }
    found = geo.lookup(SAN_FRANCISCO, app)
    assert (found["country"], found["city"], found["time_zone"]) == (
        "US",
        "San Francisco",
        "America/Los_Angeles",
    )
    assert "subdivision_2" not in found


def test_unknown_or_invalid_addresses_give_an_empty_result(app, tmp_path):
    use_database(app, write_city_database(tmp_path / "city.mmdb"))
    assert geo.lookup("192.0.2.1", app) == {}
    assert geo.lookup("127.0.0.1", app) == {}
    assert geo.lookup("not an address", app) == {}
    assert geo.lookup(None, app) == {}


def test_the_reader_is_opened_once_and_reused(app, tmp_path):
    use_database(app, write_city_database(tmp_path / "city.mmdb"))
    first = geo.reader_for(app)
    geo.lookup(LONDON, app)
    assert geo.reader_for(app) is first
    assert app.extensions["crumby.geo"].reader is first


def test_a_replaced_file_is_reopened_without_a_restart(app, tmp_path):
    path = tmp_path / "city.mmdb"
    use_database(app, write_city_database(path))
    assert geo.lookup(LONDON, app)["city"] == "London"
    moved = dict(PLACES)
    moved["81.2.69.0/24"] = dict(PLACES["81.2.69.0/24"], city="Croydon")
    replacement = write_city_database(tmp_path / "new.mmdb", moved)
    os.replace(replacement, path)  # what `crumby geoip` does
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert geo.lookup(LONDON, app)["city"] == "Croydon"


def test_a_missing_file_means_empty_geo_and_exactly_one_warning(app, client, tmp_path, caplog):
    use_database(app, tmp_path / "absent.mmdb")
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        for _ in range(5):
            assert client.post("/visit", json={"dl": PAGE}).status_code == 204
        assert geo.lookup(LONDON, app) == {}
    warnings = [r for r in caplog.records if "GeoIP database" in r.getMessage()]
    assert len(warnings) == 1
    assert "absent.mmdb" in warnings[0].getMessage()
    with app.app_context():
        cities = db.session.scalars(select(Visit.city)).all()
    assert cities == [None] * 5
    # The file arrives later: used from the next hit on, no restart.
    write_city_database(tmp_path / "absent.mmdb")
    assert geo.lookup(LONDON, app)["city"] == "London"


def test_a_corrupt_file_is_treated_as_missing(app, tmp_path, caplog):
    path = tmp_path / "broken.mmdb"
    path.write_bytes(b"this is not a MaxMind database")
    use_database(app, path)
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        assert geo.lookup(LONDON, app) == {}
        assert geo.lookup(LONDON, app) == {}
    assert len([r for r in caplog.records if "cannot be opened" in r.getMessage()]) == 1


def test_visits_are_stored_with_their_city(app, client, tmp_path):
    use_database(app, write_city_database(tmp_path / "city.mmdb"))
    app.config["PROXY_COUNT"] = 1
    app.config["ANONYMIZE_IP"] = False  # the full addresses (geolocation uses them either way)
    client.post("/visit", json={"dl": PAGE}, headers={"X-Forwarded-For": LONDON})
    client.post("/visit", json={"dl": PAGE}, headers={"X-Forwarded-For": SAN_FRANCISCO})
    client.post("/visit", json={"dl": PAGE}, headers={"X-Forwarded-For": "192.0.2.1"})
    with app.app_context():
        rows = db.session.execute(
            select(
                Visit.ip,
                Visit.continent,
                Visit.country,
                Visit.subdivision_1,
                Visit.city,
                Visit.latitude,
                Visit.accuracy_radius,
                Visit.time_zone,
            ).order_by(Visit.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        (LONDON, "EU", "GB", "England", "London", 51.5142, 10, "Europe/London"),
        (
            "2001:db8:1::abcd",
            "NA",
            "US",
            "California",
            "San Francisco",
            37.7749,
            50,
            "America/Los_Angeles",
        ),
        ("192.0.2.1", None, None, None, None, None, None, None),
    ]


def test_the_file_is_looked_at_no_more_than_once_a_second(app, tmp_path, monkeypatch):
    monkeypatch.setattr(geo, "RECHECK_SECONDS", 3600.0)
    path = tmp_path / "city.mmdb"
    use_database(app, path)
    assert geo.lookup(LONDON, app) == {}  # not there yet
    write_city_database(path)
    assert geo.lookup(LONDON, app) == {}  # not looked at again so soon
    monkeypatch.setattr(geo, "RECHECK_SECONDS", 0.0)
    assert geo.lookup(LONDON, app)["city"] == "London"
