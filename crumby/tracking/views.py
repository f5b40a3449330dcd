"""The tracker script, GET /cmb.js, served by the tracking blueprint.

The hit endpoints /visit and /event are not Flask views: see ``endpoint``.
"""

from __future__ import annotations

import os

from flask import Response, current_app, send_from_directory

from crumby.tracking import bp

STATIC_FOLDER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")


@bp.get("/cmb.js")
def tracker() -> Response:
    """The tracker script, cacheable by browsers for TRACKER_MAX_AGE seconds."""
    response = send_from_directory(
        STATIC_FOLDER,
        "cmb.js",
        mimetype="text/javascript",
        max_age=int(current_app.config.get("TRACKER_MAX_AGE", 3600)),
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
