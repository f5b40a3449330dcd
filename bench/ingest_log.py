#!/usr/bin/env python3
"""How fast ``crumby ingest-log`` imports a web server's access log.

    .venv/bin/python bench/ingest_log.py                          # SQLite, 1,000,000 lines
    .venv/bin/python bench/ingest_log.py --database postgresql+psycopg://postgres@127.0.0.1/x
    .venv/bin/python bench/ingest_log.py --lines 100000 --database sqlite

It writes a combined-format log (a fixed random seed: the same file every
run) of a site's week: visitors with their own address and browser, who
view a few pages each (with query strings, campaign links, referrers), and
the assets those pages load, plus crawlers, errors, redirects and POSTs in
the shares listed below; lines a little out of time order, as servers write
them. Then it runs the real command, ``crumby ingest-log --site HOST FILE``,
in a child process on an empty database (a new file for SQLite; a new
database beside the one the URL names for MySQL/PostgreSQL, dropped after)
and prints its lines per second, wall and CPU time, and what it stored. A
second run of the same file measures an import whose lines are all stored
already (every one a duplicate).

    .venv/bin/python bench/ingest_log.py --syslog 100000    # needs nginx and ab

measures ``crumby syslog`` instead: nginx, configured with README's
``log_format`` and ``access_log`` lines, answers that many requests from
``ab`` and sends its log to the listener, which stores the page views under
one site; it prints how fast nginx answered, how fast the listener stored
them and how many it dropped because the database fell behind.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
SITE = "bench.example"
#: shares of the generated lines (the rest are page views by people)
MIX = {"asset": 0.30, "bot": 0.05, "error": 0.03, "redirect": 0.02, "post": 0.02}
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
]
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
]
REFERRERS = ["-", "-", "-", "https://www.google.com/", "https://news.ycombinator.com/item?id=1"]
ASSETS = ["/static/site.css", "/static/app.js", "/img/logo.png", "/favicon.ico", "/fonts/a.woff2"]


def generate(path: Path, lines: int, seed: int = 1) -> None:
    """A combined-format log of ``lines`` lines over a week."""
    rng = random.Random(seed)
    pages = [f"/blog/post-{n}" for n in range(300)] + ["/", "/pricing", "/about", "/docs"]
    visitors = [
        (
            ".".join(str(rng.randint(1, 223 if n == 0 else 254)) for n in range(4)),
            rng.choice(AGENTS).format(v=rng.randint(100, 131)),
        )
        for _ in range(max(lines // 20, 10))
    ]
    start = dt.datetime(2024, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    step = 7 * 86400 / lines
    thresholds = []
    total = 0.0
    for kind, share in MIX.items():
        total += share
        thresholds.append((total, kind))
    with path.open("w", encoding="utf-8") as out:
        for n in range(lines):
            # written when the request ends: now and then a line is a second or two early
            when = start + dt.timedelta(seconds=n * step - rng.choice((0, 0, 0, 0, 1, 2)))
            stamp = when.strftime("%d/%b/%Y:%H:%M:%S %z")
            ip, agent = visitors[int(rng.random() ** 2 * len(visitors))]
            method, status, path_, referrer = "GET", 200, rng.choice(pages), rng.choice(REFERRERS)
            draw = rng.random()
            kind = next((k for limit, k in thresholds if draw < limit), "page")
            if kind == "asset":
                path_, referrer = rng.choice(ASSETS), f"https://{SITE}{path_}"
            elif kind == "bot":
                agent = rng.choice(BOTS)
            elif kind == "error":
                status = rng.choice((404, 404, 500))
            elif kind == "redirect":
                status = 301
            elif kind == "post":
                method = "POST"
            elif draw > 0.97:
                path_ += "?utm_source=newsletter&utm_medium=email"
            elif draw > 0.95:
                path_ += f"?page={rng.randint(2, 9)}"
            size = rng.randint(200, 60000)
            out.write(
                f'{ip} - - [{stamp}] "{method} {path_} HTTP/1.1" {status} {size} '
                f'"{referrer}" "{agent}"\n'
            )


def server_database(url: str) -> tuple[str, sa.Engine, str]:
    """A new, empty database on the server ``url`` names: its URL, an admin engine, its name."""
    base = sa.engine.make_url(url)
    name = f"crumby_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        extra = " CHARACTER SET utf8mb4" if base.get_backend_name() == "mysql" else ""
        conn.execute(sa.text(f"CREATE DATABASE {name}{extra}"))
    return base.set(database=name).render_as_string(hide_password=False), admin, name


def drop_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))
    admin.dispose()


def crumby(args: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """Run ``crumby ARGS``; its output, wall seconds and CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", "from crumby.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"crumby {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result.stdout, wall, cpu


def table_bytes(url: str, table: str) -> tuple[int, int]:
    """Rows of a table, and the bytes it takes with its indexes."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            name = engine.dialect.name
            if name == "sqlite":  # dbstat: pages of the table and of its indexes
                size = conn.execute(
                    sa.text(
                        "SELECT SUM(pgsize) FROM dbstat WHERE name = :t OR name IN "
                        "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t)"
                    ),
                    {"t": table},
                ).scalar_one()
            elif name == "postgresql":
                size = conn.execute(
                    sa.text("SELECT pg_total_relation_size(:t)"), {"t": table}
                ).scalar_one()
            else:  # MySQL's figures are as of the last ANALYZE
                conn.execute(sa.text(f"ANALYZE TABLE {table}")).all()
                size = conn.execute(
                    sa.text(
                        "SELECT data_length + index_length FROM information_schema.tables "
                        "WHERE table_schema = DATABASE() AND table_name = :t"
                    ),
                    {"t": table},
                ).scalar_one()
    finally:
        engine.dispose()
    return rows, int(size or 0)


def field(output: str, name: str) -> int:
    match = re.search(rf"^{name}: (\d+)", output, re.MULTILINE)
    return int(match[1]) if match else -1


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readme_nginx_lines(port: int) -> tuple[str, str]:
    """README's nginx block: the ``http``-level lines, and the ``access_log`` line for ``port``."""
    text = (HERE.parent / "README.md").read_text()
    block = text.split("<!-- nginx-syslog -->", 1)[1].split("```nginx\n", 1)[1].split("```")[0]
    access = next(line for line in block.splitlines() if line.startswith("access_log syslog:"))
    return block.replace(access, ""), access.replace("127.0.0.1:65140", f"127.0.0.1:{port}")


def syslog_rate(requests: int, env: dict[str, str], tmp: Path) -> None:
    """nginx answers ``requests`` pages (ab) and logs them to ``crumby syslog``: how fast
    the listener stores them, and how many it drops."""
    ab, nginx = shutil.which("ab"), shutil.which("nginx") or "/usr/sbin/nginx"
    if not ab or not Path(nginx).exists():
        sys.exit("--syslog needs nginx and ab (apt-get install nginx apache2-utils)")
    udp, web = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    log = tmp / "syslog.err"
    listener = subprocess.Popen(
        [sys.executable, "-c", "from crumby.cli import main; main()", "syslog"]
        + ["--port", str(udp), "--site", SITE, "--stats-seconds", "0.5"],
        env=env,
        stderr=log.open("w"),
    )
    http_part, access = readme_nginx_lines(udp)
    (tmp / "temp").mkdir()
    config = tmp / "nginx.conf"
    config.write_text(
        f"daemon off; pid {tmp / 'nginx.pid'}; error_log {tmp / 'nginx-error.log'};\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + "events { worker_connections 1024; }\n"
        + f"http {{ access_log off; client_body_temp_path {tmp / 'temp'};\n{http_part}\n"
        + f"server {{ listen 127.0.0.1:{web}; {access}\n"
        + 'location / { default_type text/html; return 200 "a page\\n"; } } }\n'
    )
    server = subprocess.Popen([nginx, "-c", str(config), "-p", str(tmp)])

    def counts() -> dict[str, int]:
        lines = re.findall(r"received (\d+), stored (\d+), .* dropped (\d+)", log.read_text())
        received, stored, dropped = (int(n) for n in lines[-1]) if lines else (0, 0, 0)
        return {"received": received, "stored": stored, "dropped": dropped}

    try:
        deadline = time.monotonic() + 60
        while "listening on udp" not in log.read_text() or not _answers(web):
            if time.monotonic() > deadline or listener.poll() is not None:
                sys.exit(f"the listener or nginx did not start:\n{log.read_text()}")
            time.sleep(0.2)
        started = time.perf_counter()
        result = subprocess.run(
            [ab, "-q", "-k", "-c", "16", "-n", str(requests), "-H", f"User-Agent: {AGENTS[0]}"]
            + [f"http://127.0.0.1:{web}/page"],
            capture_output=True,
            text=True,
            check=False,
        )
        answered = time.perf_counter() - started
        rate = re.search(r"Requests per second:\s+([\d.]+)", result.stdout)
        last, settled = counts(), time.perf_counter()
        while time.perf_counter() - settled < 3:  # until the counts stop moving
            time.sleep(0.5)
            now = counts()
            if now != last:
                last, settled = now, time.perf_counter()
        stored_in = settled - started
    finally:
        server.send_signal(signal.SIGQUIT)
        server.wait(30)
        listener.send_signal(signal.SIGTERM)
        listener.wait(60)
    final = counts()
    print(
        f"syslog: nginx answered {requests} pages in {answered:.1f} s "
        f"({float(rate[1]) if rate else 0:.0f}/s, ab -c 16)"
    )
    print(
        f"  the listener received {final['received']}, stored {final['stored']} "
        f"({final['stored'] / stored_in:.0f}/s over {stored_in:.1f} s), "
        f"dropped {final['dropped']} (queue full)"
    )


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (a temporary file), or a mysql+pymysql:// or postgresql+psycopg:// URL "
        "of a server where the benchmark may create a database",
    )
    parser.add_argument(
        "--syslog",
        type=int,
        metavar="REQUESTS",
        help="instead: measure crumby syslog behind nginx with this many requests",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crumby-bench-log-") as folder:
        tmp = Path(folder)
        tmp.chmod(0o755)  # nginx's workers read nothing here, but may need to look
        log = tmp / "access.log"
        if args.syslog:
            args.lines = 0
        if args.lines:
            started = time.perf_counter()
            generate(log, args.lines)
            print(
                f"generated {args.lines} lines ({log.stat().st_size / 1e6:.0f} MB) "
                f"in {time.perf_counter() - started:.1f} s"
            )
        admin = name = None
        if args.database == "sqlite":
            url = f"sqlite:///{tmp / 'crumby.db'}"
        else:
            url, admin, name = server_database(args.database)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRUMBY_")}
        env.update(
            CRUMBY_SQLALCHEMY_DATABASE_URI=url,
            CRUMBY_SECRET_KEY="bench",
            CRUMBY_GEOIP2_DATABASE_NAME=str(tmp / "none.mmdb"),
            HOME=str(tmp),
        )
        try:
            crumby(["addsite", SITE], env)
            shown = sa.engine.make_url(url).render_as_string(hide_password=True)
            print(f"database: {shown}")
            if args.syslog:
                syslog_rate(args.syslog, env, tmp)
                return
            print(f"{'run':<22}{'lines/s':>10}{'wall s':>9}{'CPU s':>8}{'stored':>9}{'skipped':>9}")
            for label in ("import", "again (duplicates)"):
                output, wall, cpu = crumby(["ingest-log", "--site", SITE, str(log)], env)
                stored, skipped = field(output, "stored"), field(output, "skipped")
                assert field(output, "lines") == args.lines, output
                print(
                    f"{label:<22}{args.lines / wall:>10.0f}{wall:>9.1f}{cpu:>8.1f}"
                    f"{stored:>9}{skipped:>9}"
                )
                if label == "import":
                    print("  " + "\n  ".join(output.strip().splitlines()[1:4]))
                    for table in ("visits", "import_keys"):
                        rows, size = table_bytes(url, table)
                        print(
                            f"  {table}: {rows} rows, {size / 1e6:.1f} MB with indexes, "
                            f"{size / max(rows, 1):.0f} bytes a row"
                        )
        finally:
            if admin is not None and name is not None:
                drop_database(admin, name)


if __name__ == "__main__":
    main()
