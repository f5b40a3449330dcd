"""Tracking: serves cmb.js and turns /visit and /event hits into rows.

``bp`` needs no CSRF token (browsers on other sites post to it); an app with
Flask-WTF's CSRFProtect must exempt it, which ``init_app`` does when the
protection is already set up, and ``csrf.exempt(bp)`` does otherwise.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("tracking", __name__)

from crumby.tracking import views  # noqa: E402,F401  (registers the routes)


def init_app(app: Flask) -> None:
    """Register the blueprint and the GeoIP state; exempt the hits from CSRF if protected."""
    from crumby import geo

    geo.init_app(app)
    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None and hasattr(csrf, "exempt"):
        csrf.exempt(bp)
