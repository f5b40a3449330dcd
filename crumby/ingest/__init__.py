"""Ingest: the one pipeline every stored row goes through, and the group-commit writer.

``store(app, visits, events)`` for bulk writers; ``store_all(app, ...)`` for
writers that need all rows in one transaction or none (``POST /api/events``);
``writer_for(app, engine)`` for the hit endpoints, which wait for their row's
commit.
"""

from crumby.ingest.counters import Counters, counters_for
from crumby.ingest.pipeline import Batch, Pipeline, pipeline_for, store, store_all

__all__ = [
    "Batch",
    "Counters",
    "Pipeline",
    "counters_for",
    "pipeline_for",
    "store",
    "store_all",
]
