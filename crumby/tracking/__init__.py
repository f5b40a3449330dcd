"""Tracking: serves cmb.js (and cmb.auto.js) and turns /visit and /event hits into rows.

``bp`` serves /cmb.js and /cmb.auto.js. The hits themselves are answered by ``HitEndpoints``,
a WSGI middleware that ``init_app`` puts in front of the Flask app (see
``endpoint`` for why), so they never meet Flask's CSRF check or session. The
blueprint stays CSRF-exempt all the same (``crumby.csrf`` exempts the hit
paths and the ``tracking`` blueprint by name), as anything it serves is for
other sites' pages.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Request
from flask.sessions import SessionInterface

bp = Blueprint("tracking", __name__)

#: paths that never read or write the session cookie (hits never reach Flask at all)
SESSIONLESS_PATHS = frozenset({"/cmb.js", "/cmb.auto.js"})

from crumby.tracking import views  # noqa: E402,F401  (registers the routes)


def init_app(app: Flask) -> None:
    """Register the blueprint, the GeoIP state and the hit endpoints in front of the app."""
    from crumby import geo
    from crumby.tracking.endpoint import HitEndpoints

    geo.init_app(app)
    app.register_blueprint(bp)
    if not isinstance(app.wsgi_app, HitEndpoints):
        app.wsgi_app = HitEndpoints(app, app.wsgi_app)  # type: ignore[method-assign]
    if not isinstance(app.session_interface, HitsWithoutSession):
        app.session_interface = HitsWithoutSession(app.session_interface)
    csrf = app.extensions.get("csrf")
    if csrf is not None and hasattr(csrf, "exempt"):
        csrf.exempt(bp)


class HitsWithoutSession(SessionInterface):
    """The app's session interface, except that the tracker scripts get a null session.

    Opening the signed session cookie costs a hit more than all of its own
    parsing, and a hit has no use for it (cookies of another site's visitor
    are not even sent to Crumby's origin in most browsers).
    """

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def open_session(self, app: Flask, request: Request) -> Any:
        """A null session for the tracker scripts; the wrapped interface's session otherwise."""
        if request.path in SESSIONLESS_PATHS:
            return self.make_null_session(app)
        return self.inner.open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        """Delegated to the wrapped interface."""
        return self.inner.save_session(app, session, response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
