"""The HTML pages a site owner opens."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from crumby.dashboard import views  # noqa: E402,F401  (registers the routes)
