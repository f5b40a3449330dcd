"""Reports from .sql files: discovery, safe rendering, read-only running, the JSON/CSV API.

The Python API the dashboard uses (inside an app context): ``list_queries``,
``get_query``, ``run_query``, ``parse_range``/``RangeError``. ``Query.chart`` is
the declared chart or None; ``listed_chart(query)`` (and ``Result.chart``) always
name one, inferring it when the file does not say.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from crumby.reporting.discovery import Query, get_query, list_queries
from crumby.reporting.ranges import RangeError, parse_range, today
from crumby.reporting.reports import QueryError, Result, listed_chart, run_query

bp = Blueprint("reporting", __name__)

__all__ = [
    "Query",
    "QueryError",
    "RangeError",
    "Result",
    "bp",
    "get_query",
    "init_app",
    "list_queries",
    "listed_chart",
    "parse_range",
    "run_query",
    "today",
]


def init_app(app: Flask) -> None:
    """Register the blueprint, the result cache and CORS for the JSON API."""
    from crumby.reporting import cors, reports

    reports.init_app(app)
    cors.init_app(app)
    app.register_blueprint(bp)


from crumby.reporting import api, docs  # noqa: E402,F401  (registers the routes)
