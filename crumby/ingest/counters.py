"""What the pipeline stored and dropped, counted in one place per app.

Every way in (the hit endpoints, log imports, app events) goes through the
pipeline, so these counts are complete. ``Counters.add`` is also the one place
that feeds the Prometheus counters ``/metrics`` exposes
(``crumby.operations.metrics``): per process, for every app in it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

from flask import Flask

from crumby.operations import metrics

#: the reasons a well-formed row is not stored (or, for ``bot``, not counted by reports);
#: ``malformed`` and ``unsupported`` are Measurement Protocol hits that are answered 200
#: as the protocol wants, but are not stored (``crumby.tracking.collect``); the hit
#: endpoints' refusals (rate_limited, invalid, ...) are added here too, by
#: ``crumby.operations.wsgi``, under ``crumby.operations.metrics.STATUS_REASONS``
REASONS = ("unknown_site", "bot", "dnt", "malformed", "unsupported")


class Counters:
    """Rows stored per table and rows dropped per reason, since this process started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stored: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()

    def add(self, stored: Mapping[str, int], dropped: Mapping[str, int]) -> None:
        """Add one committed batch's outcome (or one refused hit's reason)."""
        with self.lock:
            self.stored.update(stored)
            self.dropped.update(dropped)
        metrics.count_batch(stored, dropped)

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        """Copies of the counts, safe to read while batches commit."""
        with self.lock:
            return dict(self.stored), dict(self.dropped)


def counters_for(app: Flask) -> Counters:
    """The app's counters, created on first use."""
    return app.extensions.setdefault("crumby.counters", Counters())
