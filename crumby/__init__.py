"""Crumby: self-hosted web analytics for Flask people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from crumby.extensions import db, login_manager

__version__ = "0.1.0"
__all__ = ["create_app", "db", "login_manager", "__version__"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a Crumby app: defaults, then CRUMBY_SETTINGS, then CRUMBY_* env, then ``config``."""
    from crumby import auth, csrf, database, errors, security, settings, sharing
    from crumby.dashboard import bp as dashboard_bp

    app = Flask(__name__)
    # A doubled slash (or an encoded one, /api/public/%2Fx) names no resource: answer 404
    # (JSON on the API) instead of Werkzeug's HTML redirect to a path the caller never asked for.
    app.url_map.merge_slashes = False
    app.config.from_mapping(settings.resolve(config))

    database.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    csrf.init_app(app)
    security.init_app(app)
    sharing.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard_bp)
    from crumby import reporting

    reporting.init_app(app)

    from crumby import appevents, tracking

    appevents.init_app(app)
    tracking.init_app(app)
    from crumby import operations

    operations.init_app(app)  # last: its WSGI layer (probes, timing) goes in front of all
    return app
