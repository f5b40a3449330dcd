"""Build small MaxMind-format city databases for tests (no download, no internet)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdb_writer import MmdbF64, MmdbU16, MMDBWriter
from netaddr import IPSet

#: network -> place; the default records every geo test can rely on
PLACES: dict[str, dict[str, Any]] = {
    "81.2.69.0/24": {
        "continent": "EU",
        "country": "GB",
        "subdivision_1": "England",
        "subdivision_2": "Greater London",
        "city": "London",
        "latitude": 51.5142,
        "longitude": -0.0931,
        "accuracy_radius": 10,
        "time_zone": "Europe/London",
    },
    "2001:db8:1::/48": {
        "continent": "NA",
        "country": "US",
        "subdivision_1": "California",
        "subdivision_2": None,
        "city": "San Francisco",
        "latitude": 37.7749,
        "longitude": -122.4194,
        "accuracy_radius": 50,
        "time_zone": "America/Los_Angeles",
    },
}


def city_record(place: Mapping[str, Any]) -> dict[str, Any]:
    """The GeoIP2-City record for a place, in MaxMind's layout."""
    subdivisions = [
        {"iso_code": "X1", "names": {"en": name}}
        for name in (place.get("subdivision_1"), place.get("subdivision_2"))
        if name
    ]
    record: dict[str, Any] = {
        "continent": {"code": place["continent"], "names": {"en": place["continent"]}},
        "country": {"iso_code": place["country"], "names": {"en": place["country"]}},
        "city": {"names": {"en": place["city"]}},
        "location": {
            "latitude": MmdbF64(place["latitude"]),
            "longitude": MmdbF64(place["longitude"]),
            "accuracy_radius": MmdbU16(place["accuracy_radius"]),
            "time_zone": place["time_zone"],
        },
    }
    if subdivisions:
        record["subdivisions"] = subdivisions
    return record


def write_city_database(
    path: Path | str,
    places: Mapping[str, Mapping[str, Any]] = PLACES,
    database_type: str = "GeoLite2-City",
) -> Path:
    """Write an IPv6 (IPv4-compatible) city database holding ``places``."""
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description="Crumby test city database",
    )
    for network, place in places.items():
        writer.insert_network(IPSet([network]), city_record(place))
    path = Path(path)
    writer.to_db_file(str(path))
    return path
