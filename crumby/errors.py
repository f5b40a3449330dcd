"""Error responses in one place: JSON for API and hit requests, HTML for pages."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError

from crumby.database import DatabaseError

#: paths whose callers are scripts or the tracker, never a person
JSON_PATH_PREFIXES = ("/api", "/visit", "/event")


def wants_json() -> bool:
    """True when the caller should get JSON rather than an HTML page."""
    if request.path.startswith(JSON_PATH_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and (
        request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def json_error(status: int, message: str, **extra: object) -> Response:
    """The one shape of every JSON error: ``{"error": message}``."""
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


def _handle_http(exc: HTTPException) -> Response | HTTPException:
    if wants_json():
        response = json_error(exc.code or 500, exc.description or exc.name)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        if getattr(exc, "retry_after", None):
            response.headers["Retry-After"] = str(exc.retry_after)  # type: ignore[attr-defined]
        return response
    html = render_template("error.html", code=exc.code, name=exc.name, description=exc.description)
    return Response(html, status=exc.code or 500, mimetype="text/html")


def _handle_database(exc: DatabaseError) -> Response:
    from flask import current_app

    current_app.logger.error("%s", exc)
    if wants_json():
        return json_error(503, "database unavailable")
    html = render_template(
        "error.html",
        code=503,
        name="Service Unavailable",
        description="The database is unavailable.",
    )
    return Response(html, status=503, mimetype="text/html")


def _handle_unreachable(exc: OperationalError | PoolTimeout) -> Response:
    """A lost, refused or timed-out connection anywhere in a request: 503, like DatabaseError.

    (A report's own query failing in the database is answered by the reporting
    module, naming the query; this covers the site lookup, logins, tokens.)
    """
    from crumby.database import describe

    return _handle_database(DatabaseError(f"database unavailable: {describe(exc)}"))


def _handle_unexpected(exc: Exception) -> Response | HTTPException:
    from flask import current_app

    if isinstance(exc, HTTPException):
        return _handle_http(exc)
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return _handle_http(InternalServerError())


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(DatabaseError, _handle_database)
    app.register_error_handler(OperationalError, _handle_unreachable)
    app.register_error_handler(PoolTimeout, _handle_unreachable)
    app.register_error_handler(Exception, _handle_unexpected)
