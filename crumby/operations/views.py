"""GET /metrics: the Prometheus text format, for a logged-in user or a Bearer token."""

from __future__ import annotations

from flask import Blueprint, Response
from flask_login import current_user
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from crumby.errors import json_error
from crumby.operations import metrics

bp = Blueprint("operations", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    """Every metric of every worker (multi-process mode), or of this process."""
    if not current_user.is_authenticated:
        response = json_error(
            401, "authentication required: log in or send 'Authorization: Bearer <token>'"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="crumby"'
        return response
    response = Response(generate_latest(metrics.registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response.headers["Cache-Control"] = "no-store"
    return response
