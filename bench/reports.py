"""Time every built-in report on a synthetic visits table.

    python bench/reports.py                       # 1 million visits in a temporary SQLite file
    python bench/reports.py --rows 10000000       # 10 million
    python bench/reports.py --database mysql+pymysql://root@127.0.0.1/crumby_bench

It fills the database (once: an existing table with the requested row count is
reused; --fresh starts over), then runs each built-in query for a 30-day and a
365-day range ending today: "cold" is the first run on a new connection pool,
"warm" the median of three further runs. The baseline is an indexed
``COUNT(*)`` over the same range, measured in the same run; ratios are against it.
Targets (issue 4, SQLite, 1M visits over a year): 30 days < 250 ms warm, 365 days < 1.5 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time

from sqlalchemy import func, select, text

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from crumby.sessions import stitch_missing  # noqa: E402

from crumby import create_app  # noqa: E402
from crumby.database import ensure_schema  # noqa: E402
from crumby.extensions import db  # noqa: E402
from crumby.models import Event, Visit  # noqa: E402
from crumby.reporting import list_queries, run_query  # noqa: E402

TARGETS_MS = {30: 250, 365: 1500}
PAGES = [f"/{section}/{n}" for section in ("blog", "docs", "shop", "news") for n in range(150)]
REFERRERS = [None] * 6 + [
    "https://www.google.com/search?q=crumby",
    "https://news.ycombinator.com/item?id=1",
    "https://duckduckgo.com/",
    "https://twitter.com/someone/status/1",
    "https://site.example/blog/1",
]
BROWSERS = ["Chrome", "Firefox", "Safari", "Edge", "Samsung Internet", None]
PLATFORMS = ["Windows", "macOS", "Linux", "Android", "iOS", None]
DEVICES = ["desktop", "desktop", "mobile", "mobile", "tablet"]
LANGS = ["en-us", "en-gb", "de-de", "fr-fr", "es-es", "ja", "pt-br"]
SCREENS = ["1920x1080", "1366x768", "390x844", "414x896", "2560x1440", "1536x864"]
PLACES = [
    ("US", "California", "San Jose"),
    ("DE", "Berlin", "Berlin"),
    ("FR", "Île-de-France", "Paris"),
    ("GB", "England", "London"),
    ("IN", "Karnataka", "Bengaluru"),
    (None, None, None),
]
UTMS = [(None, None, None)] * 8 + [("newsletter", "email", "spring"), ("ads", "cpc", "brand")]


def _session(rng: random.Random, visitors: int, when: dt.datetime, size: int) -> list[dict]:
    cid = f"v{rng.randrange(visitors):08d}"
    place = rng.choice(PLACES)
    utm = rng.choice(UTMS)
    bot = rng.random() < 0.02
    common = {
        "cid": cid,
        "ip": "192.0.2.1",
        "browser": "Googlebot" if bot else rng.choice(BROWSERS),
        "platform": rng.choice(PLATFORMS),
        "device": rng.choice(DEVICES),
        "lang": rng.choice(LANGS),
        "screen_res": rng.choice(SCREENS),
        "country": place[0],
        "subdivision_1": place[1],
        "city": place[2],
        "utm_source": utm[0],
        "utm_medium": utm[1],
        "utm_campaign": utm[2],
        "is_bot": bot,
        "referrer": rng.choice(REFERRERS),
    }
    views = []
    for _ in range(size):
        page = rng.choice(PAGES)
        views.append(
            {
                **common,
                "datetime": when.replace(microsecond=0),
                "doc_uri": "https://site.example" + page,
                "doc_title": page.title(),
            }
        )
        common["referrer"] = "https://site.example/"
        when += dt.timedelta(seconds=rng.choice([5, 20, 60, 180, 600, 2400]))
    return views


def generate(rows: int, days: int, end: dt.date, seed: int = 1):
    """Visits in sessions of 1-8 views over ``days`` days up to ``end``, 2 % bots.

    Rows come day by day in time order, as a live tracker writes them, so that
    the table's physical order follows ``datetime`` as it would in production.
    """
    rng = random.Random(seed)
    visitors = max(rows // 12, 1)
    made = 0
    for index in range(days):
        day = dt.datetime.combine(end - dt.timedelta(days=days - 1 - index), dt.time())
        quota = (rows * (index + 1)) // days - made
        todays: list[dict] = []
        while len(todays) < quota:
            start = day + dt.timedelta(seconds=rng.randrange(86400))
            size = min(rng.randint(1, 8), quota - len(todays))
            todays.extend(_session(rng, visitors, start, size))
        todays.sort(key=lambda row: row["datetime"])
        made += len(todays)
        yield from todays


def fill(rows: int, days: int, fresh: bool) -> None:
    have = db.session.scalar(select(func.count()).select_from(Visit))
    if have == rows and not fresh:
        print(f"reusing {have:,} visits", flush=True)
        return
    db.session.execute(Visit.__table__.delete())
    db.session.execute(Event.__table__.delete())
    db.session.commit()
    started = time.perf_counter()
    batch, table, end = [], Visit.__table__, dt.datetime.now(dt.UTC).date()
    events = []
    with db.engine.begin() as conn:
        for n, row in enumerate(generate(rows, days, end), 1):
            batch.append(row)
            if n % 10 == 0:
                events.append(
                    {
                        "cid": row["cid"],
                        "datetime": row["datetime"],
                        "name": "click",
                        "value": row["doc_title"][:20],
                        "is_bot": row["is_bot"],
                    }
                )
            if len(batch) == 20000:
                conn.execute(table.insert(), batch)
                conn.execute(Event.__table__.insert(), events)
                batch, events = [], []
                print(f"\r  {n:,} visits", end="", flush=True)
        if batch:
            conn.execute(table.insert(), batch)
        if events:
            conn.execute(Event.__table__.insert(), events)
        print(f"\r  {rows:,} visits; stitching sessions", end="", flush=True)
        stitch_missing(conn)
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    elif db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE TABLE visits, events")
    print(f"\rfilled {rows:,} visits in {time.perf_counter() - started:.0f} s", flush=True)


def timed(fn) -> tuple[float, float]:
    """Wall-clock and this process's CPU milliseconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def measure(query, t0: dt.date, t1: dt.date) -> tuple[float, float, float]:
    """Cold wall time, warm wall time (median of 3) and warm CPU time (median of 3)."""
    db.engine.dispose()  # cold: a new pool, nothing prepared
    cold, _ = timed(lambda: run_query(query, t0, t1, use_cache=False))
    warm = [timed(lambda: run_query(query, t0, t1, use_cache=False)) for _ in range(3)]
    return cold, statistics.median(w for w, _ in warm), statistics.median(c for _, c in warm)


def baseline(t0: dt.date, t1: dt.date) -> float:
    lo, hi = dt.datetime.combine(t0, dt.time()), dt.datetime.combine(t1, dt.time())
    hi += dt.timedelta(days=1)
    stmt = text("SELECT COUNT(*) FROM visits WHERE datetime >= :a AND datetime < :b").bindparams(
        a=lo, b=hi
    )
    with db.engine.connect() as conn:
        conn.execute(stmt)
        return statistics.median(timed(lambda: conn.execute(stmt).scalar())[0] for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--span-days", type=int, default=365, help="days the visits cover")
    parser.add_argument("--database", help="SQLAlchemy URL (default: a SQLite file in /tmp)")
    parser.add_argument("--fresh", action="store_true", help="refill even if the table is full")
    parser.add_argument("--only", help="comma-separated query names")
    args = parser.parse_args()
    url = args.database or "sqlite:///" + os.path.join(
        tempfile.gettempdir(), f"crumby-bench-{args.rows}.db"
    )
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "REPORT_TIMEOUT_SECONDS": 600, "REPORT_CACHE_SECONDS": 0}
    )
    ensure_schema(app)
    with app.app_context():
        print(f"database: {db.engine.url.render_as_string(hide_password=True)}", flush=True)
        fill(args.rows, args.span_days, args.fresh)
        end = dt.datetime.now(dt.UTC).date()
        ranges = {n: (end - dt.timedelta(days=n - 1), end) for n in TARGETS_MS}
        base = {n: baseline(*r) for n, r in ranges.items()}
        print(
            f"baseline (indexed COUNT(*) of the range): 30 d {base[30]:.1f} ms, "
            f"365 d {base[365]:.1f} ms\n"
        )
        in_process = db.engine.dialect.name == "sqlite"
        header = (
            f"{'query':<28}{'30d cold':>10}{'30d warm':>10}{'cpu':>7}{'x base':>8}"
            f"{'365d cold':>11}{'365d warm':>11}{'cpu':>7}{'x base':>8}  target"
        )
        print(header)
        print("-" * len(header))
        wanted = set(args.only.split(",")) if args.only else None
        misses = []
        for scope in ("public", "private"):
            for query in list_queries(scope):
                if wanted and query.name not in wanted:
                    continue
                cells, ok = [], True
                for n, (t0, t1) in ranges.items():
                    cold, warm, cpu = measure(query, t0, t1)
                    ratio = warm / base[n] if base[n] else float("inf")
                    width = 10 if n == 30 else 11
                    cells.append(f"{cold:>{width}.0f}{warm:>{width}.0f}{cpu:>7.0f}{ratio:>8.1f}")
                    # SQLite runs inside this process, so its CPU time is the query's own cost
                    # even on a busy machine; a server's work shows only as wall time
                    if (cpu if in_process else warm) > TARGETS_MS[n]:
                        ok = False
                        misses.append(f"{query.key} {n}d")
                print(f"{query.key:<28}{''.join(cells)}  {'ok' if ok else 'MISS'}", flush=True)
        print("\ntimes in ms; warm and cpu = median of 3 runs; cpu = this process's CPU time")
        print("targets (warm; on SQLite judged by cpu): 30 d < 250 ms, 365 d < 1500 ms")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if misses:
            print("over target: " + ", ".join(misses))


if __name__ == "__main__":
    main()
