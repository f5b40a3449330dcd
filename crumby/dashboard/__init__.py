"""The HTML pages a site owner opens, and the demo mode's sample site."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from crumby.dashboard import (  # noqa: E402,F401  (register the routes)
    demo_site,
    goalpages,
    sharepages,
    sitepages,
    views,
)
