"""CORS for the JSON API per CROSSDOMAIN_ORIGIN, via flask-cors.

The public API may be read by any allowed origin, without credentials. The
private API allows credentials (the session cookie) only for listed origins:
with ``'*'`` it answers ``*`` without credentials, so a browser never sends a
logged-in user's cookie to another site's script; bearer tokens still work.

With a list of origins the answer depends on the request's ``Origin`` (the
allowed one is echoed, any other gets no CORS header), so every answer under
``/api/`` then says ``Vary: Origin``: refusals, errors and preflights too,
and even a request without ``Origin``. Otherwise a shared cache (the public
reports are ``Cache-Control: public``) could hand one origin's answer to
another. With ``'*'`` the answer is the same for every origin: no Vary.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_cors import CORS

#: where the CORS policies below apply
CORS_PREFIX = "/api/"


def allowed_origins(app: Flask) -> list[str] | str:
    """CROSSDOMAIN_ORIGIN as flask-cors wants it: '*' or a list of origins."""
    value = app.config.get("CROSSDOMAIN_ORIGIN") or []
    if isinstance(value, str):
        value = [value]
    origins = [str(v).strip().rstrip("/") for v in value if str(v).strip()]
    return "*" if "*" in origins else origins


def init_app(app: Flask) -> None:
    """Apply the two policies to /api/private... and the rest of /api/..."""
    origins = allowed_origins(app)
    common = {
        "methods": ["GET", "OPTIONS"],
        "max_age": 600,
        "vary_header": True,
        "send_wildcard": origins == "*",
    }
    CORS(
        app,
        resources={
            r"/api/private(/.*)?": {
                **common,
                "origins": origins,
                "supports_credentials": origins != "*",
                "allow_headers": ["Authorization"],
            },
            r"/api/.*": {**common, "origins": origins, "supports_credentials": False},
        },
    )
    if origins != "*":

        @app.after_request
        def _vary_on_origin(response: Response) -> Response:
            if request.path.startswith(CORS_PREFIX):
                response.vary.add("Origin")
            return response
