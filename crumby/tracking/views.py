"""The tracker scripts, GET /cmb.js and /cmb.auto.js, served by the tracking blueprint.

Both are built from ``tracker/cmb.js`` (``npm run build``): ``cmb.js`` records
page views and ``cmb.event`` calls, ``cmb.auto.js`` adds automatic events
(outbound links, downloads, 404 pages). They are served alike.

The hit endpoints /visit and /event are not Flask views: see ``endpoint``.
"""

from __future__ import annotations

import os

from flask import Response, current_app, send_from_directory

from crumby.tracking import bp

STATIC_FOLDER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")


#: the tracker builds, each served at /NAME
TRACKERS = ("cmb.js", "cmb.auto.js")


@bp.get("/<any(" + ", ".join(f'"{name}"' for name in TRACKERS) + "):name>")
def tracker(name: str) -> Response:
    """A tracker script, cacheable by browsers for TRACKER_MAX_AGE seconds."""
    response = send_from_directory(
        STATIC_FOLDER,
        name,
        mimetype="text/javascript",
        max_age=int(current_app.config.get("TRACKER_MAX_AGE", 3600)),
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
