"""Operations: health and readiness probes, Prometheus metrics, the hit rate limit.

- ``metrics``: the metric definitions (imported by the ingest pipeline and the
  writer; nothing of Flask);
- ``wsgi``: ``/healthz``, ``/readyz`` and request timing, as the outermost
  WSGI layer;
- ``views``: ``/metrics`` (logged-in users and Bearer tokens);
- ``ratelimit``: HIT_RATE_LIMIT, checked by the hit endpoints;
- ``gunicorn_conf``: gunicorn hooks for multi-process metrics.

This module imports none of them, so that importing ``metrics`` stays light.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Check HIT_RATE_LIMIT, register /metrics, put the probes and timing in front of all."""
    from crumby.operations import ratelimit, views, wsgi

    ratelimit.init_app(app)
    app.register_blueprint(views.bp)
    if not isinstance(app.wsgi_app, wsgi.Operations):
        app.wsgi_app = wsgi.Operations(app, app.wsgi_app)  # type: ignore[method-assign]
