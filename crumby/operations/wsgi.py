"""The outermost WSGI layer: /healthz and /readyz, and request durations by endpoint class.

The probes are answered here, before Flask: a load balancer asks every few
seconds, and Flask's first-request hook would create the tables (touching the
database) where ``/healthz`` must not. Every other request passes on, timed:
hits (``/visit``, ``/event``) are answered by the WSGI layer of
``crumby.tracking.endpoint`` just inside this one, so timing them costs one
clock read and one histogram observation, no Flask machinery. A hit answered
with an error status is counted as dropped under its reason
(``metrics.STATUS_REASONS``), through the app's ingest counters like the
pipeline's own drops, so that ``Counters`` (and what it feeds) is complete.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine

from crumby.ingest.counters import counters_for
from crumby.operations import metrics
from crumby.store import deadlines

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: the hit endpoints (and the other ways in that answer like them)
HIT_PATHS = frozenset({"/visit", "/event", "/collect", "/api/events"})
#: paths that are not timed: the probes and the scrape itself would only add noise
UNTIMED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
NO_STORE = ("Cache-Control", "no-store")
#: /readyz answers 503 when the database has not answered a round trip in this time
READY_TIMEOUT_SECONDS = 2.0
#: a report's or page's database waits end this long after REPORT_TIMEOUT_SECONDS
REPORT_GRACE_SECONDS = 0.5


def endpoint_class(path: str) -> str:
    """``hit``, ``report`` (the JSON/CSV API) or ``page`` (the rest: pages, assets)."""
    if path in HIT_PATHS:
        return "hit"
    if path.startswith("/api/"):
        return "report"
    return "page"


class Operations:
    """WSGI middleware in front of everything else (``crumby.operations.init_app``)."""

    def __init__(self, app: Flask, wrapped: WSGIApp) -> None:
        self.app = app
        self.wrapped = wrapped
        self._engine: Engine | None = None
        self.probes = {"/healthz": self.healthz, "/readyz": self.readyz}
        self.timers = {
            name: metrics.REQUEST_SECONDS.labels(endpoint=name) for name in metrics.ENDPOINT_CLASSES
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        probe = self.probes.get(path)
        if probe is not None:
            return self.answer_probe(probe, environ, start_response)
        if path in UNTIMED_PATHS:
            with deadlines.deadline(self.request_bound()):
                return self.wrapped(environ, start_response)
        kind = endpoint_class(path)
        started = time.perf_counter()
        if kind != "hit":
            # Every database wait of a report or a page ends in time (crumby.store.deadlines):
            # the query's own limit, plus a moment to answer 503 when the database is silent.
            # (Hits have their own bound, in the writer.)
            try:
                with deadlines.deadline(self.request_bound()):
                    return self.wrapped(environ, start_response)
            finally:
                self.timers[kind].observe(time.perf_counter() - started)
        statuses: list[str] = []

        def recording(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self.wrapped(environ, recording)
        finally:
            self.timers["hit"].observe(time.perf_counter() - started)
            if statuses and statuses[-1][0] != "2":
                reason = metrics.STATUS_REASONS.get(int(statuses[-1][:3]))
                if reason is not None:
                    counters_for(self.app).add({}, {reason: 1})

    def request_bound(self) -> float:
        """Seconds a report, page or /metrics request may wait on the database in all."""
        return float(self.app.config.get("REPORT_TIMEOUT_SECONDS") or 10) + REPORT_GRACE_SECONDS

    # ---- probes -------------------------------------------------------------------------

    def answer_probe(
        self,
        probe: Callable[[], tuple[int, dict[str, Any]]],
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            status, answer = 405, {"error": f"{method} is not allowed here"}
            extra = [("Allow", "GET, HEAD")]
        else:
            status, answer = probe()
            extra = []
        body = json.dumps(answer).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            NO_STORE,
            *extra,
        ]
        start_response(f"{status} {STATUS_NAMES[status]}", headers)
        return [] if method == "HEAD" else [body]

    def healthz(self) -> tuple[int, dict[str, Any]]:
        """The process serves: nothing else is checked (the database is not touched)."""
        return 200, {"status": "ok"}

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """Ready when the tables are in place and the database answers a round trip."""
        from crumby.database import describe, ensure_schema

        try:
            with deadlines.deadline(READY_TIMEOUT_SECONDS):
                ensure_schema(self.app)
                with self.engine().connect() as connection:
                    connection.execute(text("SELECT 1")).scalar()
        except Exception as exc:  # whatever the driver raises: not ready
            self.app.logger.error("readyz: the database cannot be reached: %s", describe(exc))
            return 503, {"status": "unavailable", "error": "the database cannot be reached"}
        return 200, {"status": "ok", "database": "ok"}

    def engine(self) -> Engine:
        """The app's engine (looked up once)."""
        if self._engine is None:
            from crumby.extensions import db

            with self.app.app_context():
                self._engine = db.engine
        return self._engine


STATUS_NAMES = {200: "OK", 405: "Method Not Allowed", 503: "Service Unavailable"}
