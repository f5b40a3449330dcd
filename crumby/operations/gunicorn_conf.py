"""gunicorn hooks for multi-process metrics.

Used as ``gunicorn --config python:crumby.operations.gunicorn_conf ...``.

With PROMETHEUS_MULTIPROC_DIR set (the systemd unit sets it), each worker
writes its metrics to files in that folder and ``/metrics`` adds them up.

- ``on_starting`` (the master, once per start, not on a reload): creates the
  folder if needed and empties it, so that a fresh start does not add the
  previous run's counts (Prometheus sees a counter reset, as it expects after
  a restart). The systemd unit's RuntimeDirectory= is new at each start
  anyway; this covers other ways of running gunicorn.
- ``child_exit`` (the master, when a worker exits): the worker's share of the
  queue-depth gauge goes; its counters stay in the sum, as counters must.

Without the variable, both hooks do nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: as in ``crumby.operations.metrics``, which the master must not import: metrics defined
#: there would write files under the master's pid
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    """Create and empty the metrics folder before any worker starts."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges."""
    if not os.environ.get(MULTIPROC_ENV):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
