"""gunicorn hooks: multi-process metrics, and a stop that resets no connection.

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

- ``post_worker_init`` (each worker): when a gthread worker stops (SIGTERM,
  ``systemctl stop``), it takes every connection already waiting in the
  listening socket's queue, then closes its copy of that socket, before it
  finishes its requests within ``--graceful-timeout``. gunicorn alone keeps
  the socket open until the worker exits, accepting nothing, so a connection
  made meanwhile waited in the queue and was reset at the exit; now it is
  served, and once every worker has closed its copy a new connection is
  refused at once (a client or a proxy can try another server).
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


def post_worker_init(worker: Any) -> None:
    """Make a stopping gthread worker drain and close its listening sockets."""
    original = getattr(worker, "set_accept_enabled", None)
    if original is None or not hasattr(worker, "accept"):
        return  # another worker class: gunicorn's own behaviour

    def set_accept_enabled(enabled: bool) -> None:
        stopping = not enabled and not worker.alive
        if stopping:
            for listener in worker.sockets:
                _drain(worker, listener)
        original(enabled)
        if stopping:
            for listener in worker.sockets:
                _drain(worker, listener)  # what came in meanwhile
                listener.close()

    worker.set_accept_enabled = set_accept_enabled


def _drain(worker: Any, listener: Any) -> None:
    """Accept every connection waiting in ``listener``'s queue (it does not block)."""
    while True:
        before = worker.nr_conns
        worker.accept(listener)  # EAGAIN (nothing waiting) is swallowed
        if worker.nr_conns == before:
            return


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges."""
    if not os.environ.get(MULTIPROC_ENV):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
