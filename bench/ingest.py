#!/usr/bin/env python3
"""How fast Crumby ingests hits, against a bare Flask endpoint measured in the same run.

    .venv/bin/pip install -e '.[bench]'        # gunicorn (and the MySQL/PostgreSQL drivers)
    apt-get install apache2-utils              # ab, the load generator
    .venv/bin/python bench/ingest.py           # SQLite in a temporary folder
    .venv/bin/python bench/ingest.py --database postgresql+psycopg://postgres@127.0.0.1/crumby

Both servers run under the same gunicorn (gthread workers on 127.0.0.1) and are
driven by the same ``ab`` command: POST /visit with the body cmb.js's
sendBeacon sends (text/plain, form-encoded), for a fixed time, over keep-alive
connections. The script prints hits/s for each, Crumby's ratio to the bare
endpoint, p50/p99 latency, and the visit rows stored against the 2xx answers
(they must be equal: an answered hit is a committed row).

It only talks to 127.0.0.1. On a machine shared with other work the absolute
figures move; the ratio, taken in the same run, moves much less.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def bare_app():
    """The baseline: a Flask app whose /visit does nothing but answer 204."""
    from flask import Flask, Response

    app = Flask("bare")

    @app.route("/visit", methods=["GET", "POST"])
    def visit() -> Response:
        return Response(status=204)

    return app


@dataclass
class Result:
    """What one ab run measured."""

    name: str
    seconds: float
    complete: int
    ok: int
    rps: float
    p50: float
    p99: float
    stored: int | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(app_spec: str, port: int, args, env: dict, log: Path) -> subprocess.Popen:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which(
        "gunicorn"
    )
    if not gunicorn:
        sys.exit("gunicorn is not installed: pip install -e '.[bench]'")
    command = [
        gunicorn,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(args.threads),
        "--keep-alive",
        "30",
        "--backlog",
        "2048",
        "--chdir",
        str(HERE),
        "--log-level",
        "warning",
        app_spec,
    ]
    process = subprocess.Popen(
        command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn for {app_spec} exited; see {log}:\n{log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/visit", timeout=1)
            return process
        except urllib.error.HTTPError:
            return process  # it answers (a 400 is an answer)
        except OSError:
            time.sleep(0.2)
    stop(process)
    sys.exit(f"gunicorn for {app_spec} did not start; see {log}")


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_ab(
    name: str,
    url: str,
    body: Path,
    concurrency: int,
    tmp: Path,
    seconds: float | None = None,
    requests: int | None = None,
) -> Result:
    """Drive ``url`` for ``seconds`` or for exactly ``requests`` hits."""
    ab = shutil.which("ab")
    if not ab:
        sys.exit("ab is not installed: apt-get install apache2-utils")
    percentiles = tmp / f"{name}-percentiles.csv"
    command = [
        ab,
        "-q",
        "-k",
        "-c",
        str(concurrency),
        *(["-t", str(seconds), "-n", "100000000"] if seconds else ["-n", str(requests)]),
        "-s",
        "60",
        "-p",
        str(body),
        "-T",
        "text/plain;charset=UTF-8",
        "-H",
        f"User-Agent: {CHROME}",
        "-H",
        "Accept-Language: en-GB,en;q=0.9",
        "-e",
        str(percentiles),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=False)
    text = output.stdout
    if output.returncode != 0 or "Complete requests" not in text:
        sys.exit(f"ab failed ({output.returncode}):\n{output.stderr}\n{text}")

    def number(label: str, default: float = 0.0) -> float:
        match = re.search(rf"^{label}:\s+([\d.]+)", text, re.MULTILINE)
        return float(match.group(1)) if match else default

    complete = int(number("Complete requests"))
    failed = int(number("Failed requests"))
    non_2xx = int(number("Non-2xx responses"))
    table = {}
    with percentiles.open() as fh:
        for row in csv.reader(fh):
            if row and row[0].replace(".", "").isdigit():
                table[int(float(row[0]))] = float(row[1])
    return Result(
        name=name,
        seconds=number("Time taken for tests"),
        complete=complete,
        ok=complete - failed - non_2xx,
        rps=number("Requests per second"),
        p50=table.get(50, 0.0),
        p99=table.get(99, 0.0),
    )


def count_rows(database: str, marker: str) -> int:
    from sqlalchemy import create_engine, func, select

    sys.path.insert(0, str(ROOT))
    from crumby.models import Visit

    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(Visit).where(Visit.doc_uri == marker)
            return connection.execute(query).scalar_one()
    finally:
        engine.dispose()


def analyze(database: str) -> None:
    """Give the planner statistics of the table the warm-up filled.

    A PostgreSQL server with autovacuum on (the default) analyzes a table soon
    after it fills; this machine's runs with autovacuum off, and without
    statistics its planner reads the tracker's per-visitor lookup off the
    wrong index. A production table has statistics, so the measured run does.
    """
    from sqlalchemy import create_engine

    engine = create_engine(database, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("ANALYZE visits")
            elif engine.dialect.name == "mysql":
                connection.exec_driver_sql("ANALYZE TABLE visits")
    finally:
        engine.dispose()


def prepare_database(database: str) -> None:
    """Create Crumby's tables before the clock starts, as a first request would."""
    sys.path.insert(0, str(ROOT))
    from crumby import create_app
    from crumby.database import ensure_schema

    app = create_app({"SQLALCHEMY_DATABASE_URI": database})
    ensure_schema(app)
    with app.app_context():
        from crumby.extensions import db

        db.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="SQLAlchemy URL (default: SQLite in a temp folder)")
    parser.add_argument("--seconds", type=float, default=10, help="load time per server")
    parser.add_argument("--concurrency", type=int, default=32, help="ab's open connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=32, help="gthread threads per worker")
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of load before each run (min 1)"
    )
    args = parser.parse_args(argv)
    args.warmup = max(args.warmup, 1)

    tmp = Path(tempfile.mkdtemp(prefix="crumby-bench-"))
    database = args.database or f"sqlite:///{tmp / 'bench.db'}"
    run_id = uuid.uuid4().hex[:12]
    marker = f"https://bench.example/{run_id}"
    body = tmp / "hit.txt"
    body.write_text(
        "cid=bench-visitor&dl="
        + urllib.parse.quote(marker, safe="")
        + "&dt=Bench%20page&de=UTF-8&ul=en-GB&sd=24-bit&sr=1920x1080"
    )
    warm_body = tmp / "warm.txt"
    warm_body.write_text("cid=bench-warmup&dl=https%3A%2F%2Fbench.example%2Fwarmup")
    prepare_database(database)

    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUMBY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["CRUMBY_SQLALCHEMY_DATABASE_URI"] = database
    env["CRUMBY_GEOIP2_DATABASE_NAME"] = str(tmp / "no-geoip.mmdb")
    env["CRUMBY_SECRET_KEY"] = "bench"
    # every hit comes from 127.0.0.1: HIT_RATE_LIMIT would turn most of them away
    env["CRUMBY_HIT_RATE_LIMIT"] = "off"

    results = []
    for name, spec in (("bare Flask 204", "ingest:bare_app()"), ("Crumby", "crumby:create_app()")):
        port = free_port()
        server = start_gunicorn(spec, port, args, env, tmp / f"{name.split()[0]}.log")
        try:
            url = f"http://127.0.0.1:{port}/visit"
            # ab -t abandons the requests in flight when time is up, which the server
            # still stores; so the warm-up measures the rate and the measured run
            # sends exactly rate x seconds hits, every one of them answered.
            warm = run_ab(f"{name}-warmup", url, warm_body, args.concurrency, tmp, args.warmup)
            if name == "Crumby":
                analyze(database)
            hits = max(int(warm.rps * args.seconds), 100)
            results.append(run_ab(name, url, body, args.concurrency, tmp, requests=hits))
        finally:
            stop(server)
    bare, crumby = results
    crumby.stored = count_rows(database, marker)

    backend = database.split(":", 1)[0]
    print(
        f"Crumby ingest benchmark: POST /visit, about {args.seconds:g} s each, ab -c "
        f"{args.concurrency}, gunicorn {args.workers} gthread workers x {args.threads} "
        f"threads, {os.cpu_count()} CPUs, database {backend}"
    )
    print(
        f"{'server':<16}{'hits/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'2xx':>10}{'stored':>10}"
        f"{'seconds':>9}"
    )
    for result in results:
        stored = "-" if result.stored is None else str(result.stored)
        print(
            f"{result.name:<16}{result.rps:>10.0f}{result.p50:>9.1f}{result.p99:>9.1f}"
            f"{result.ok:>10}{stored:>10}{result.seconds:>9.1f}"
        )
    ratio = crumby.rps / bare.rps if bare.rps else 0.0
    print(f"ratio Crumby / bare: {ratio:.2f}")
    lost = crumby.ok - (crumby.stored or 0)
    print(
        f"rows stored vs 2xx answered: {crumby.stored} / {crumby.ok}"
        + (" (equal)" if lost == 0 else f" (MISMATCH: {lost})")
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
