"""GeoIP city lookups with one reader per app, reopened when the database file changes.

The reader is opened lazily on the first lookup (so an app starts without a
GeoIP file), kept in ``app.extensions["crumby.geo"]`` and shared by every
thread of the process. At most once a second a lookup compares the file's
modification time and size with the open reader's, so ``crumby geoip`` replacing the file is picked
up without a restart. A missing or unreadable file gives empty results and
exactly one warning until the file appears; an address the database does not
know gives an empty result. Nothing here raises to the caller.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import geoip2.database
import geoip2.errors
from flask import Flask, current_app

#: how often, at most, a lookup looks at the file for a change (a stat per hit adds up)
RECHECK_SECONDS = 1.0

#: the keys ``lookup`` fills: the geo columns of the ``visits`` table
GEO_COLUMNS = (
    "continent",
    "country",
    "subdivision_1",
    "subdivision_2",
    "city",
    "latitude",
    "longitude",
    "accuracy_radius",
    "time_zone",
)


@dataclass
class GeoState:
    """The per-app reader and what it was opened from."""

    path: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    reader: Any = None
    #: (mtime_ns, size) of the file the reader was opened from
    stamp: tuple[int, int] | None = None
    #: True once the "no database" warning has been logged for the current outage
    warned: bool = False
    #: time.monotonic() of the last look at the file
    checked: float = float("-inf")


def init_app(app: Flask) -> None:
    """Give the app its (still closed) GeoIP state."""
    app.extensions["crumby.geo"] = GeoState(path=app.config.get("GEOIP2_DATABASE_NAME") or "")


def _state(app: Flask) -> GeoState:
    state = app.extensions.get("crumby.geo")
    if state is None:
        init_app(app)
        state = app.extensions["crumby.geo"]
    return state


def _file_stamp(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_mtime_ns, info.st_size


def reader_for(app: Flask) -> Any:
    """The app's open ``geoip2`` reader, (re)opened if the file changed; None without one."""
    state = _state(app)
    path = app.config.get("GEOIP2_DATABASE_NAME") or ""
    now = time.monotonic()
    if path == state.path and now - state.checked < RECHECK_SECONDS:
        return state.reader
    state.checked = now
    stamp = _file_stamp(path) if path else None
    if stamp is not None and stamp == state.stamp and path == state.path:
        return state.reader
    with state.lock:
        if stamp is not None and stamp == state.stamp and path == state.path:
            return state.reader
        if path != state.path:  # the setting changed: a new file, a new warning
            state.path, state.warned = path, False
        old = state.reader
        state.reader, state.stamp = None, None
        if old is not None:
            # Threads still holding the old reader finish their lookup on the
            # memory-mapped copy; closing it now is safe for later lookups only.
            _close_quietly(old)
        if stamp is None:
            _warn_once(app, state, "GeoIP database %s not found: geo columns stay empty")
            return None
        try:
            state.reader = geoip2.database.Reader(state.path)
        except Exception as exc:  # a corrupt or foreign file: same as missing
            _warn_once(
                app, state, "GeoIP database %s cannot be opened (%s): geo columns stay empty", exc
            )
            return None
        state.stamp = stamp
        if state.warned:
            app.logger.info("GeoIP database %s opened", state.path)
        state.warned = False
        return state.reader


def _warn_once(app: Flask, state: GeoState, message: str, *args: object) -> None:
    if not state.warned:
        app.logger.warning(message, state.path or "(GEOIP2_DATABASE_NAME unset)", *args)
        state.warned = True


def _close_quietly(reader: Any) -> None:
    try:
        reader.close()
    except Exception:  # closing is best effort
        pass


def lookup(ip: str | None, app: Flask | None = None) -> dict[str, Any]:
    """The city record for ``ip`` as visit columns; {} when unknown or without a database."""
    if not ip:
        return {}
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    reader = reader_for(app)
    if reader is None:
        return {}
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return {}
    try:
        record = reader.city(str(address))
    except (geoip2.errors.AddressNotFoundError, ValueError):
        return {}
    except Exception as exc:  # a reader closed under us, a broken file: no geo for this hit
        app.logger.debug("GeoIP lookup failed for %s: %s", ip, exc)
        return {}
    return _columns(record)


def _columns(record: Any) -> dict[str, Any]:
    subdivisions = list(record.subdivisions or ())
    location = record.location
    values = {
        "continent": record.continent.code,
        "country": record.country.iso_code,
        "subdivision_1": subdivisions[0].name if subdivisions else None,
        "subdivision_2": subdivisions[1].name if len(subdivisions) > 1 else None,
        "city": record.city.name,
        "latitude": location.latitude,
        "longitude": location.longitude,
        "accuracy_radius": location.accuracy_radius,
        "time_zone": location.time_zone,
    }
    return {key: value for key, value in values.items() if value is not None}
