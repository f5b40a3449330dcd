""" "Now" for one app: the wall clock, unless a test pinned it.

Reports' default ranges, "today" and realtime depend on the current time;
tests pin it with ``pin(app, when)`` so that they pass at any hour (CI once
failed between 00:00 and 03:00 UTC because of a test that read the clock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask, current_app

from crumby.models import utcnow


def now(app: Flask | None = None) -> dt.datetime:
    """The current UTC time (naive, as stored) for ``app`` or the current app."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    clock: Callable[[], dt.datetime] = app.extensions.get("crumby.clock", utcnow)
    return clock()


def pin(app: Flask, when: dt.datetime | None) -> None:
    """Make ``now(app)`` answer ``when`` (None: the wall clock again)."""
    if when is None:
        app.extensions.pop("crumby.clock", None)
    else:
        app.extensions["crumby.clock"] = lambda: when
