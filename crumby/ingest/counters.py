"""What the pipeline stored and dropped, counted in one place per app.

Every way in (the hit endpoints, log imports, app events) goes through the
pipeline, so these counts are complete; ``/metrics`` exposes them.
"""

from __future__ import annotations

import threading
from collections import Counter

from flask import Flask

#: the reasons a well-formed row is not stored (or, for ``bot``, not counted by reports);
#: ``malformed`` and ``unsupported`` are Measurement Protocol hits that are answered 200
#: as the protocol wants, but are not stored (``crumby.tracking.collect``)
REASONS = ("unknown_site", "bot", "dnt", "malformed", "unsupported")


class Counters:
    """Rows stored per table and rows dropped per reason, since this process started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stored: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()

    def add(self, stored: Counter[str], dropped: Counter[str]) -> None:
        """Add one committed batch's outcome."""
        with self.lock:
            self.stored.update(stored)
            self.dropped.update(dropped)

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        """Copies of the counts, safe to read while batches commit."""
        with self.lock:
            return dict(self.stored), dict(self.dropped)


def counters_for(app: Flask) -> Counters:
    """The app's counters, created on first use."""
    return app.extensions.setdefault("crumby.counters", Counters())
