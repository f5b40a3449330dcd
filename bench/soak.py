#!/usr/bin/env python3
"""A soak run: mixed traffic against gunicorn for a bounded time, the database restarted midway.

    .venv/bin/python bench/soak.py                          # SQLite, 5 minutes
    .venv/bin/python bench/soak.py --seconds 60
    .venv/bin/python bench/soak.py --database postgresql    # a PostgreSQL server of its own
    .venv/bin/python bench/soak.py --database mysql         # a MariaDB server of its own

Crumby runs under gunicorn as the shipped systemd unit starts it (its workers,
threads and options; only the address differs), on a fresh database with one
public site. Client threads send, for the whole run: hits (POST /visit, as
cmb.js's beacon sends them, from many addresses through X-Forwarded-For with
PROXY_COUNT = 1), public API reports, and dashboard pages. Halfway, the
database goes away for a few seconds: MariaDB and PostgreSQL are servers this
script started on ports of their own (tests/private_servers.py; never the
shared ones) and are stopped and started again; SQLite has no server, so
another process holds its write lock (BEGIN EXCLUSIVE) for as long.

It prints requests per second, p50/p99 latency per endpoint class (hit,
report, page), answers by status per class, client errors, the workers'
memory (RSS) at the start and the end, and the visit rows stored against the
hits answered 2xx (they must be equal: an answered hit is a committed row),
and the workers' memory every tenth of the run (caches fill up to their bounds
and level off: the hit limiter's 50,000 addresses, the User-Agent parse cache,
the report cache).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import free_port, start_gunicorn, stop, unit_gunicorn_options  # noqa: E402
from tests.private_servers import SERVERS  # noqa: E402

SITE = "soak.example"
OUTAGE_SECONDS = 5.0
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
#: (class, weight, path or None for a hit)
MIX = [
    ("hit", 80, None),
    ("report", 6, f"/api/public/summary?site={SITE}&days=7"),
    ("report", 6, f"/api/public/visits?site={SITE}&days=30"),
    ("report", 3, f"/api/public/documents?site={SITE}&days=7"),
    ("page", 5, f"/?site={SITE}"),
]


class Tally:
    """What the clients saw, shared by their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter] = defaultdict(Counter)
        self.errors: Counter = Counter()
        self.hits_ok = 0

    def add(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.status[kind][status] += 1
            if kind == "hit" and 200 <= status < 300:
                self.hits_ok += 1


def client(port: int, number: int, until: float, tally: Tally) -> None:
    """One browser-like client: a kept-alive connection, a new one when it breaks."""
    rng = random.Random(number)
    weights = [weight for _, weight, _ in MIX]
    connection: http.client.HTTPConnection | None = None
    sent = 0
    while time.monotonic() < until:
        kind, _, path = rng.choices(MIX, weights)[0]
        sent += 1
        address = f"10.{number}.{rng.randrange(250)}.{rng.randrange(250)}"
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.perf_counter()
        try:
            if path is None:
                body = (
                    f"dl=https%3A%2F%2F{SITE}%2Fp{rng.randrange(50)}&dt=Page"
                    f"&dr=https%3A%2F%2Fsearch.example%2F&sr=1920x1080&ul=en-GB"
                )
                connection.request(
                    "POST",
                    "/visit",
                    body=body,
                    headers={
                        "Content-Type": "text/plain;charset=UTF-8",
                        "User-Agent": FIREFOX,
                        "X-Forwarded-For": address,
                    },
                )
            else:
                connection.request("GET", path, headers={"X-Forwarded-For": address})
            response = connection.getresponse()
            response.read()
            tally.add(kind, time.perf_counter() - started, response.status)
            if response.will_close:
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException) as exc:
            with tally.lock:
                tally.errors[f"{kind}: {type(exc).__name__}"] += 1
            connection.close()
            connection = None
            time.sleep(0.05)
    if connection is not None:
        connection.close()


def worker_rss(master: int) -> dict[int, int]:
    """Resident memory (KiB) of each gunicorn worker (the master's children)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("PPid", "0").strip()) == master and "VmRSS" in fields:
            found[int(entry)] = int(fields["VmRSS"].split()[0])
    return found


def sample_memory(
    master: int, started: float, until: float, samples: list[tuple[float, int]]
) -> None:
    """The workers' summed RSS (KiB) every tenth of the run: growth that levels off is caches
    filling up to their bounds; growth that does not is a leak."""
    step = (until - started) / 10
    while time.monotonic() < until:
        time.sleep(step)
        samples.append((time.monotonic() - started, sum(worker_rss(master).values())))


def outage(kind: str, server, sqlite_path: Path | None) -> str:
    """Take the database away for OUTAGE_SECONDS; say what was done."""
    if server is not None:
        started = time.monotonic()
        server.stop()
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
        server.start()
        return f"{kind} server stopped and started again ({time.monotonic() - started:.1f} s)"
    assert sqlite_path is not None
    holder = sqlite3.connect(sqlite_path, timeout=30)
    holder.execute("BEGIN EXCLUSIVE")
    time.sleep(OUTAGE_SECONDS)
    holder.rollback()
    holder.close()
    return f"SQLite write lock held by another process for {OUTAGE_SECONDS:.0f} s"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def count_visits(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT COUNT(*) FROM visits WHERE doc_host = :host"), {"host": SITE}
            ).scalar()
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the run")
    parser.add_argument("--database", choices=["sqlite", "mysql", "postgresql"], default="sqlite")
    parser.add_argument("--clients", type=int, default=16, help="client threads")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="crumby-soak-"))
    server = None
    sqlite_path = None
    if args.database == "sqlite":
        sqlite_path = folder / "crumby.db"
        url = f"sqlite:///{sqlite_path}"
    else:
        server = SERVERS[args.database]()
        server.start()
        server.create_database("crumby_soak")
        url = server.url("crumby_soak")
    settings = folder / "crumby.cfg"
    settings.write_text(
        f"SQLALCHEMY_DATABASE_URI = {url!r}\nSECRET_KEY = 'soak'\nPROXY_COUNT = 1\n"
        f"GEOIP2_DATABASE_NAME = {str(folder / 'none.mmdb')!r}\n"
    )
    env = {**os.environ, "CRUMBY_SETTINGS": str(settings)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    crumby = Path(sys.executable).with_name("crumby")
    subprocess.run([crumby, "addsite", SITE, "--public"], env=env, check=True, capture_output=True)
    port = free_port()
    options = unit_gunicorn_options()
    gunicorn = start_gunicorn("crumby:create_app()", port, options, env, folder / "gunicorn.log")
    tally = Tally()
    try:
        time.sleep(1.0)
        memory_start = worker_rss(gunicorn.pid)
        started = time.monotonic()
        until = started + args.seconds
        threads = [
            threading.Thread(target=client, args=(port, n, until, tally), daemon=True)
            for n in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        samples: list[tuple[float, int]] = []
        sampler = threading.Thread(
            target=sample_memory, args=(gunicorn.pid, started, until, samples), daemon=True
        )
        sampler.start()
        time.sleep(args.seconds / 2)
        what = outage(args.database, server, sqlite_path)
        for thread in threads:
            thread.join(args.seconds + 120)
        sampler.join(30)
        elapsed = time.monotonic() - started
        memory_end = worker_rss(gunicorn.pid)
    finally:
        stop(gunicorn)
    rows = count_visits(url)
    if server is not None:
        server.remove()
    log = (folder / "gunicorn.log").read_text()
    shutil.rmtree(folder, ignore_errors=True)

    total = sum(len(v) for v in tally.latency.values())
    print(f"soak: {args.database}, {elapsed:.0f} s, {args.clients} clients, gunicorn {options}")
    print(f"midway: {what}")
    print(f"requests answered: {total} ({total / elapsed:.0f}/s)")
    for kind in ("hit", "report", "page"):
        seen = tally.latency.get(kind, [])
        if seen:
            statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.status[kind].items()))
            print(
                f"  {kind:6} {len(seen):7} ({len(seen) / elapsed:6.0f}/s)  "
                f"p50 {statistics.median(seen) * 1000:7.1f} ms  "
                f"p99 {percentile(seen, 0.99) * 1000:7.1f} ms  [{statuses}]"
            )
    print(f"client errors: {dict(tally.errors) or 'none'}")
    for label, memory in (("start", memory_start), ("end", memory_end)):
        shown = ", ".join(f"{kib / 1024:.0f} MiB" for _, kib in sorted(memory.items()))
        print(f"worker memory at {label}: {shown}")
    trend = ", ".join(f"{at:.0f}s {kib / 1024:.0f}" for at, kib in samples)
    print(f"workers' memory over the run (MiB, summed): {trend}")
    print(f"hits answered 2xx: {tally.hits_ok}; visit rows stored: {rows}")
    tracebacks = log.count("Traceback")
    print(f"tracebacks in gunicorn's log: {tracebacks}")
    equal = rows == tally.hits_ok
    print("rows == 2xx hits: " + ("yes" if equal else "NO"))
    return 0 if equal and tracebacks == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
