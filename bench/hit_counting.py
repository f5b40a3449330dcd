#!/usr/bin/env python3
"""What the metrics and the hit rate limit cost a hit, in-process, in multi-process mode.

    .venv/bin/python bench/hit_counting.py [--hits 2000] [--rounds 5]

Two measurements, both with PROMETHEUS_MULTIPROC_DIR set (the deployed mode,
where every metric update writes to a memory-mapped file):

1. The added work alone, per hit (timeit, best of 5): the histogram
   observation, the whole outer WSGI layer (a HEAD hit with and without it),
   and HIT_RATE_LIMIT's check; the per-batch counter updates are shown too.
2. Whole hits: POST /visit through the WSGI stack into SQLite (a temporary
   file, on /dev/shm where it exists), committed one by one, alternating rounds with the counting on
   (as shipped) and off (outer layer bypassed, limiter off, metric updates
   replaced by no-ops). It prints the mean per hit of each and the difference.

It talks to no server and needs no network.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _Nothing:
    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", type=int, default=1000, help="hits per round")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each kind")
    args = parser.parse_args(argv)

    # on tmpfs where there is one: disk flushes would vary more than what is measured
    shm = Path("/dev/shm")
    tmp = Path(tempfile.mkdtemp(prefix="crumby-counting-", dir=shm if shm.is_dir() else None))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "metrics")
    (tmp / "metrics").mkdir()
    sys.path.insert(0, str(ROOT))
    from crumby import create_app
    from crumby.database import ensure_schema
    from crumby.extensions import db
    from crumby.ingest import writer
    from crumby.operations import metrics, ratelimit
    from crumby.sites import add_site

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'hits.db'}",
            "SECRET_KEY": "bench",
            "GEOIP2_DATABASE_NAME": str(tmp / "no-geoip.mmdb"),
            "HIT_RATE_LIMIT": "1000000000/second",  # counted, never reached
        }
    )
    ensure_schema(app)
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, "bench.example")
    body = b"cid=bench&dl=https%3A%2F%2Fbench.example%2Fpage&dt=Bench&sr=1920x1080"

    def environ() -> dict:
        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/visit",
            "REMOTE_ADDR": "203.0.113.5",
            "CONTENT_TYPE": "text/plain",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            "wsgi.input": io.BytesIO(body),
        }

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        assert status.startswith("204"), status

    # 1. the added work alone
    limiter = ratelimit.limiter_for(app)
    timer = metrics.REQUEST_SECONDS.labels(endpoint="hit")
    hit_environ = environ()
    number = 100_000

    def best(stmt) -> float:
        return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6

    observe = best(lambda: timer.observe(time.perf_counter() - time.perf_counter()))
    check = best(lambda: limiter.check(hit_environ))
    batch = best(lambda: metrics.count_batch({"visits": 1}, {}))
    # the whole outer layer, on a HEAD hit (parsed and answered, nothing stored)
    head = {
        "REQUEST_METHOD": "HEAD",
        "PATH_INFO": "/visit",
        "QUERY_STRING": "dl=https%3A%2F%2Fbench.example%2Fpage",
        "REMOTE_ADDR": "203.0.113.5",
    }

    def ignore(status: str, headers: list, exc_info: object = None) -> None:
        pass

    with_layer = best(lambda: app.wsgi_app(dict(head), ignore))
    without_layer = best(lambda: app.wsgi_app.wrapped(dict(head), ignore))
    print("added work per hit, multi-process mode (best of 5, microseconds):")
    print(f"  request timing + histogram observation   {observe:6.2f}")
    print(
        f"  the outer WSGI layer on a HEAD hit        {with_layer - without_layer:6.2f}"
        f"   ({with_layer:.2f} with it, {without_layer:.2f} without)"
    )
    print(f"  HIT_RATE_LIMIT check (memory store)       {check:6.2f}")
    print(f"  per batch: stored/dropped counters        {batch:6.2f}")

    # 2. whole hits, counting on and off, alternating
    shipped_app = app.wsgi_app
    inner = shipped_app.wrapped  # the hit endpoints, without the outer layer
    originals = (metrics.count_batch, writer.WRITER_QUEUE, writer.WRITER_BATCH)

    def counting(on: bool) -> None:
        if on:
            app.extensions["crumby.hit_limiter"] = limiter
            metrics.count_batch, writer.WRITER_QUEUE, writer.WRITER_BATCH = originals
        else:
            app.extensions["crumby.hit_limiter"] = None
            metrics.count_batch = lambda stored, dropped: None
            writer.WRITER_QUEUE = writer.WRITER_BATCH = _Nothing()

    def round_(wsgi) -> float:
        started = time.perf_counter()
        for _ in range(args.hits):
            wsgi(environ(), start_response)
        return (time.perf_counter() - started) / args.hits * 1e6

    round_(shipped_app)  # warm-up: the writer thread, the connection, the caches
    on, off = [], []
    for _ in range(args.rounds):
        counting(True)
        on.append(round_(shipped_app))
        counting(False)
        off.append(round_(inner))
    counting(True)
    print(f"whole hits into SQLite, {args.rounds} x {args.hits} each (mean per hit, microseconds):")
    print(f"  counting on (as shipped)   {statistics.median(on):8.1f}   rounds {_fmt(on)}")
    print(f"  counting off               {statistics.median(off):8.1f}   rounds {_fmt(off)}")
    diff = statistics.median(on) - statistics.median(off)
    print(f"  difference of medians      {diff:8.1f}   ({diff / statistics.median(off):+.1%})")
    spread = statistics.pstdev(on + off)
    if abs(diff) < 2 * spread:
        print(
            f"  (rounds spread {spread:.0f} us: the difference is within the noise of this machine)"
        )
    with app.app_context():
        db.engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.0f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
