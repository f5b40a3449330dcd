"""Crumby's Prometheus metrics, defined once per process, and how ``/metrics`` collects them.

Under gunicorn every worker is a process of its own. With the environment
variable ``PROMETHEUS_MULTIPROC_DIR`` naming an empty folder when the server
starts (the systemd unit in ``deployment/`` sets and clears it), each
process writes its values to small memory-mapped files there and ``/metrics``,
whichever worker answers it, adds up the files of all of them
(``prometheus_client``'s multi-process mode). Without the variable, as under
``crumby run``, the values live in this process alone.

This module imports nothing of Crumby or Flask: the ingest pipeline and the
hit endpoints use it on their hot paths.
"""

from __future__ import annotations

import contextlib
import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Each metric below opens its file in the folder at once: a folder that is named but
# missing (a fresh tmpfs, a typo'd path under `crumby run`) is made rather than crash.
if os.environ.get(MULTIPROC_ENV):
    with contextlib.suppress(OSError):
        os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

#: the table a stored row went to -> the ``kind`` label of crumby_hits_total
KINDS = {"visits": "visit", "events": "event"}
#: why a hit was not stored (or, for ``bot``, stored flagged and left out of reports);
#: the pipeline counts the first three, the hit endpoints' answers the others
DROP_REASONS = (
    "unknown_site",
    "bot",
    "dnt",
    "rate_limited",
    "invalid",
    "too_large",
    "database_unavailable",
    "error",
)
#: a hit endpoint's refusal -> the reason it is counted under
STATUS_REASONS = {
    400: "invalid",
    405: "invalid",
    413: "too_large",
    429: "rate_limited",
    500: "error",
    503: "database_unavailable",
}
#: request classes of crumby_request_duration_seconds
ENDPOINT_CLASSES = ("hit", "report", "page")

HITS = Counter(
    "crumby_hits",
    "Visits and events stored, by kind (bots included: they are stored flagged).",
    ["kind"],
)
DROPPED = Counter(
    "crumby_hits_dropped",
    "Hits not stored (or, for bot, not counted by reports), by reason.",
    ["reason"],
)
REQUEST_SECONDS = Histogram(
    "crumby_request_duration_seconds",
    "Time to answer a request, by endpoint class: hit (/visit, /event), "
    "report (/api/...), page (everything else).",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REPORT_SECONDS = Histogram(
    "crumby_report_duration_seconds",
    "Time a report query ran in the database (cache hits not included), by query.",
    ["query"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WRITER_QUEUE = Gauge(
    "crumby_writer_queue_depth",
    "Hits waiting for the group-commit writer (all workers added up).",
    multiprocess_mode="livesum",
)
WRITER_BATCH = Histogram(
    "crumby_writer_batch_size",
    "Hits committed together by the group-commit writer, per batch.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)

# Every label value shows from the start (at 0), so a rate() has a series to work on.
for _kind in KINDS.values():
    HITS.labels(kind=_kind)
for _reason in DROP_REASONS:
    DROPPED.labels(reason=_reason)
for _endpoint in ENDPOINT_CLASSES:
    REQUEST_SECONDS.labels(endpoint=_endpoint)

_HIT_CHILDREN = {table: HITS.labels(kind=kind) for table, kind in KINDS.items()}
_DROP_CHILDREN = {reason: DROPPED.labels(reason=reason) for reason in DROP_REASONS}


def count_batch(stored: dict[str, int], dropped: dict[str, int]) -> None:
    """Add one committed batch's outcome (rows per table, drops per reason)."""
    for table, count in stored.items():
        if count:
            child = _HIT_CHILDREN.get(table)
            if child is None:
                child = _HIT_CHILDREN[table] = HITS.labels(kind=KINDS.get(table, table))
            child.inc(count)
    for reason, count in dropped.items():
        if count:
            child = _DROP_CHILDREN.get(reason)
            if child is None:
                child = _DROP_CHILDREN[reason] = DROPPED.labels(reason=reason)
            child.inc(count)


def multiprocess_dir() -> str | None:
    """The folder of the multi-process files, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def registry() -> CollectorRegistry:
    """What ``/metrics`` exposes: every worker's files, or this process's registry."""
    if multiprocess_dir() is None:
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)
    return collected
