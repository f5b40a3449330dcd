#!/usr/bin/env python3
"""How fast Crumby ingests hits, against a bare Flask endpoint measured in the same run.

    .venv/bin/pip install -e '.[bench]'        # gunicorn (and the MySQL/PostgreSQL drivers)
    apt-get install apache2-utils              # ab, the load generator
    .venv/bin/python bench/ingest.py           # SQLite in a temporary folder
    .venv/bin/python bench/ingest.py --database postgresql+psycopg://postgres@127.0.0.1/crumby

Both servers run under gunicorn as the shipped systemd unit starts it
(deployment/systemd/crumby.service: its workers and threads, gthread, gunicorn's
own keep-alive default; only the address differs) and are driven by the same
``ab`` command: POST /visit with the body cmb.js's sendBeacon sends
(text/plain, form-encoded), once over keep-alive connections (``ab -k``, as
nginx's upstream keepalive or a browser's open connection reuses them) and
once with a new connection per hit. The hits go to a registered site
(bench.example). For each run the script prints hits/s, p50/p99 latency, the
run's wall time, the CPU time the server's processes used (gunicorn's master
and workers; for MariaDB and PostgreSQL also the database server's processes)
and that per hit, Crumby's ratio to the bare endpoint measured in the same
run, and the visit rows stored against the 2xx answers (they must be equal: an
answered hit is a committed row).

It only talks to 127.0.0.1. On a machine shared with other work the absolute
figures move; the ratio, taken in the same run, moves much less.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shlex
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
UNIT = ROOT / "deployment" / "systemd" / "crumby.service"
#: the registered site the hits belong to
SITE_HOST = "bench.example"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
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
    server_cpu: float = 0.0
    database_cpu: float | None = None


def unit_gunicorn_options() -> list[str]:
    """The gunicorn options of the shipped systemd unit, without its --bind and app."""
    for line in UNIT.read_text().splitlines():
        if line.startswith("ExecStart="):
            argv = shlex.split(line.removeprefix("ExecStart="))[1:]
            break
    else:
        sys.exit(f"no ExecStart= in {UNIT}")
    options, skip = [], False
    for arg in argv[:-1]:  # the last word is the app
        if skip:
            skip = False
        elif arg == "--bind":
            skip = True
        else:
            options.append(arg)
    return options


def option(options: list[str], name: str, default: str) -> str:
    return options[options.index(name) + 1] if name in options else default


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, command name, CPU seconds incl. reaped children) from /proc, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); utime, stime, cutime, cstime are fields 14-17
    ticks = sum(int(f) for f in fields[11:15])
    return int(fields[1]), name, ticks / CLOCK_TICKS


def _database_process(pid: int, name: str, database: str) -> bool:
    """A process doing this run's database work: MariaDB's one server process (shared with
    anything else it serves), or a PostgreSQL backend connected to the benchmark's database."""
    if name in ("mariadbd", "mysqld"):
        return True
    if name != "postgres":
        return False
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return f" {database} " in title  # "postgres: USER DATABASE 127.0.0.1(PORT) idle"


def cpu_seconds(root: int, database: str = "") -> tuple[float, float]:
    """CPU seconds so far of the process tree under ``root``, and of the database's server."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat:
                stats[int(entry)] = stat
    tree, changed = {root}, True
    while changed:
        grown = tree | {pid for pid, (parent, _, _) in stats.items() if parent in tree}
        changed, tree = grown != tree, grown
    server = sum(stats[pid][2] for pid in tree if pid in stats)
    db_cpu = sum(
        cpu for pid, (_, name, cpu) in stats.items() if _database_process(pid, name, database)
    )
    return server, db_cpu


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    app_spec: str, port: int, options: list[str], env: dict, log: Path
) -> subprocess.Popen:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which(
        "gunicorn"
    )
    if not gunicorn:
        sys.exit("gunicorn is not installed: pip install -e '.[bench]'")
    command = [
        gunicorn,
        *options,
        "--bind",
        f"127.0.0.1:{port}",
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
    keep_alive: bool = True,
) -> Result:
    """Drive ``url`` for ``seconds`` or for exactly ``requests`` hits."""
    ab = shutil.which("ab")
    if not ab:
        sys.exit("ab is not installed: apt-get install apache2-utils")
    percentiles = tmp / f"{name}-percentiles.csv".replace(" ", "-")
    command = [
        ab,
        "-q",
        *(["-k"] if keep_alive else []),
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

    from crumby.store import spec_of

    engine = create_engine(database, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            spec_of(connection).analyze(connection, "visits")
    finally:
        engine.dispose()


def prepare_database(database: str) -> None:
    """Create Crumby's tables and register the benchmark's site before the clock starts."""
    sys.path.insert(0, str(ROOT))
    from crumby import create_app
    from crumby.database import ensure_schema
    from crumby.sites import add_site, find_site

    app = create_app({"SQLALCHEMY_DATABASE_URI": database})
    ensure_schema(app)
    with app.app_context():
        from crumby.extensions import db

        with db.engine.begin() as connection:
            if find_site(connection, SITE_HOST) is None:
                add_site(connection, SITE_HOST)
        db.engine.dispose()


def write_hit(path: Path, marker: str, cid: str) -> Path:
    """The body cmb.js sends for a page view of ``marker``."""
    path.write_text(
        f"cid={cid}&dl="
        + urllib.parse.quote(marker, safe="")
        + "&dt=Bench%20page&de=UTF-8&ul=en-GB&sd=24-bit&sr=1920x1080"
    )
    return path


def measure(
    name: str, url: str, server: subprocess.Popen, args, tmp: Path, marker: str, keep_alive: bool
) -> Result:
    """A warm-up, then exactly the hits the warm-up's rate makes in ``args.seconds``.

    ab -t abandons the requests in flight when time is up, which the server
    still stores; so the warm-up measures the rate and the measured run sends
    exactly rate x seconds hits, every one of them answered.
    """
    mode = "keep-alive" if keep_alive else "close"
    cid = "bench-" + mode
    warm_body = write_hit(tmp / f"warm-{mode}.txt", marker.rsplit("/", 1)[0] + "/warmup", cid)
    body = write_hit(tmp / f"hit-{mode}.txt", marker, cid)
    warm = run_ab(
        f"{name} {mode} warmup",
        url,
        warm_body,
        args.concurrency,
        tmp,
        args.warmup,
        keep_alive=keep_alive,
    )
    if name == "Crumby":
        analyze(args.database)
    hits = max(int(warm.rps * args.seconds), 100)
    database = urllib.parse.urlsplit(args.database).path.lstrip("/")
    before = cpu_seconds(server.pid, database)
    result = run_ab(
        f"{name} {mode}", url, body, args.concurrency, tmp, requests=hits, keep_alive=keep_alive
    )
    after = cpu_seconds(server.pid, database)
    result.name = name
    result.server_cpu = after[0] - before[0]
    if name == "Crumby" and not args.database.startswith("sqlite"):
        result.database_cpu = after[1] - before[1]
    return result


def main(argv: list[str] | None = None) -> int:
    unit = unit_gunicorn_options()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="SQLAlchemy URL (default: SQLite in a temp folder)")
    parser.add_argument("--seconds", type=float, default=10, help="load time per run")
    parser.add_argument("--concurrency", type=int, default=32, help="ab's open connections")
    parser.add_argument(
        "--workers",
        type=int,
        help=f"gunicorn workers (default: the unit's, {option(unit, '--workers', '1')})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help=f"threads per worker (default: the unit's, {option(unit, '--threads', '1')})",
    )
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of load before each run (min 1)"
    )
    args = parser.parse_args(argv)
    args.warmup = max(args.warmup, 1)
    options = list(unit)
    for name, value in (("--workers", args.workers), ("--threads", args.threads)):
        if value is not None:
            if name in options:
                options[options.index(name) + 1] = str(value)
            else:
                options += [name, str(value)]

    tmp = Path(tempfile.mkdtemp(prefix="crumby-bench-"))
    args.database = args.database or f"sqlite:///{tmp / 'bench.db'}"
    run_id = uuid.uuid4().hex[:12]
    markers = {mode: f"https://{SITE_HOST}/{run_id}/{mode}" for mode in ("keep-alive", "close")}
    prepare_database(args.database)

    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUMBY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["CRUMBY_SQLALCHEMY_DATABASE_URI"] = args.database
    env["CRUMBY_GEOIP2_DATABASE_NAME"] = str(tmp / "no-geoip.mmdb")
    env["CRUMBY_SECRET_KEY"] = "bench"
    # every hit comes from 127.0.0.1: HIT_RATE_LIMIT would turn most of them away
    env["CRUMBY_HIT_RATE_LIMIT"] = "off"

    results: dict[str, list[Result]] = {"keep-alive": [], "close": []}
    for name, spec in (("bare Flask 204", "ingest:bare_app()"), ("Crumby", "crumby:create_app()")):
        port = free_port()
        server = start_gunicorn(spec, port, options, env, tmp / f"{name.split()[0]}.log")
        try:
            url = f"http://127.0.0.1:{port}/visit"
            for mode, marker in markers.items():
                result = measure(name, url, server, args, tmp, marker, mode == "keep-alive")
                results[mode].append(result)
        finally:
            stop(server)
    for mode, marker in markers.items():
        results[mode][1].stored = count_rows(args.database, marker)

    backend = args.database.split(":", 1)[0]
    print(
        f"Crumby ingest benchmark: POST /visit, about {args.seconds:g} s per run, ab -c "
        f"{args.concurrency}, gunicorn {' '.join(options)} (as {UNIT.name} runs it), "
        f"{os.cpu_count()} CPUs, database {backend}"
    )
    print("connections: keep-alive = ab -k (connections reused); close = a new connection per hit")
    print(
        "cpu s: the server's processes (gunicorn master and workers) during the run; "
        "db cpu s: PostgreSQL's backends on this database, or the whole MariaDB server"
    )
    print(
        f"{'server':<16}{'hits/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'2xx':>10}{'stored':>10}"
        f"{'wall s':>9}{'cpu s':>8}{'db cpu s':>10}{'cpu ms/hit':>12}  connections"
    )
    for mode in results:
        for result in results[mode]:
            stored = "-" if result.stored is None else str(result.stored)
            db_cpu = "-" if result.database_cpu is None else f"{result.database_cpu:.2f}"
            per_hit = 1000 * (result.server_cpu + (result.database_cpu or 0)) / max(result.ok, 1)
            print(
                f"{result.name:<16}{result.rps:>10.0f}{result.p50:>9.1f}{result.p99:>9.1f}"
                f"{result.ok:>10}{stored:>10}{result.seconds:>9.1f}{result.server_cpu:>8.2f}"
                f"{db_cpu:>10}{per_hit:>12.2f}  {mode}"
            )
    lost = 0
    for mode in results:
        bare, crumby = results[mode]
        ratio = crumby.rps / bare.rps if bare.rps else 0.0
        print(f"ratio Crumby / bare, {mode}: {ratio:.2f}")
    for mode in results:
        crumby = results[mode][1]
        missing = crumby.ok - (crumby.stored or 0)
        lost += abs(missing)
        print(
            f"rows stored vs 2xx answered, {mode}: {crumby.stored} / {crumby.ok}"
            + (" (equal)" if missing == 0 else f" (MISMATCH: {missing})")
        )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
