"""Tracking: serves cmb.js and turns /visit and /event hits into rows.

``bp`` needs no CSRF token (browsers on other sites post to it); an app with
Flask-WTF's CSRFProtect must exempt it, which ``init_app`` does when the
protection is already set up, and ``csrf.exempt(bp)`` does otherwise.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Request
from flask.sessions import SessionInterface

bp = Blueprint("tracking", __name__)

#: hit paths never read or write the session cookie
SESSIONLESS_PATHS = frozenset({"/visit", "/event", "/cmb.js"})

from crumby.tracking import views  # noqa: E402,F401  (registers the routes)


def init_app(app: Flask) -> None:
    """Register the blueprint and the GeoIP state; exempt the hits from CSRF if protected."""
    from crumby import geo

    geo.init_app(app)
    app.register_blueprint(bp)
    if not isinstance(app.session_interface, HitsWithoutSession):
        app.session_interface = HitsWithoutSession(app.session_interface)
    csrf = app.extensions.get("csrf")
    if csrf is not None and hasattr(csrf, "exempt"):
        csrf.exempt(bp)


class HitsWithoutSession(SessionInterface):
    """The app's session interface, except that hits get a null session.

    Opening the signed session cookie costs a hit more than all of its own
    parsing, and a hit has no use for it (cookies of another site's visitor
    are not even sent to Crumby's origin in most browsers).
    """

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def open_session(self, app: Flask, request: Request) -> Any:
        """A null session for hits; the wrapped interface's session for everything else."""
        if request.path in SESSIONLESS_PATHS:
            return self.make_null_session(app)
        return self.inner.open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        """Delegated to the wrapped interface."""
        return self.inner.save_session(app, session, response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
