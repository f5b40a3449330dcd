"""Time every built-in report of one site on a synthetic visits table shared by two sites.

    python bench/reports.py                       # 1 million visits in a temporary SQLite file
    python bench/reports.py --rows 10000000       # 10 million
    python bench/reports.py --database mysql+pymysql://root@127.0.0.1/crumby_bench

It fills the database once (an existing database with the requested row counts
is reused; --fresh starts over) through the ingest pipeline, as live hits are
stored: ``--rows`` visits of the measured site (site.example) and
``--other-rows`` of a second site (other.example, default as many), interleaved
in time so that the measured site's rows are spread over the table as they
would be in production. Then it runs each built-in query for the measured site
for a 30-day and a 365-day range ending on ``--end`` (a fixed date, the app's
"today", so a reused database measures the same ranges): "cold" is the first
run on a new connection pool, "warm" the median of three further runs. The
baseline is an indexed ``COUNT(*)`` of the site's visits over the same range,
measured in the same run; ratios are against it. The measured site has three goals
(a view of /shop/1, a ``click`` event, a view of /shop/2) and a funnel of them
(``GOALS``, ``FUNNEL``), with which the goals and funnel reports are timed.
Targets (issue 4, SQLite, 1M visits over a year): 30 days < 250 ms warm, 365 days < 1.5 s.

    python bench/reports.py --filters none,one,three

times every report again with one filter (``country=DE``, a view attribute) and with
three (``country=DE&device=mobile&source=google.com``, view and session attributes),
each against its unfiltered time (issue 11: filtered reports no slower than unfiltered).
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import os
import random
import statistics
import sys
import tempfile
import time

from flask import current_app
from sqlalchemy import func, select, text

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from crumby import clock, create_app, ingest  # noqa: E402
from crumby.database import ensure_schema  # noqa: E402
from crumby.extensions import db  # noqa: E402
from crumby.goals import add_funnel as add_funnel_of  # noqa: E402
from crumby.goals import add_goal, find_funnel  # noqa: E402
from crumby.ingest import rollups  # noqa: E402
from crumby.models import Event, Visit  # noqa: E402
from crumby.reporting import list_queries, parameters, run_query  # noqa: E402
from crumby.reporting.filters import Filters, parse_filters  # noqa: E402
from crumby.sites import SiteInfo, add_site, find_site  # noqa: E402
from crumby.store import spec_of  # noqa: E402

#: the site whose reports are timed, and the other one sharing the tables
SITE = "site.example"
OTHER = "other.example"
#: the default last day of the data and of the measured ranges
END = dt.date(2026, 6, 30)
#: visits handed to the pipeline at a time (rows in time order)
BATCH = 20_000

TARGETS_MS = {30: 250, 365: 1500}
#: the filter sets ``--filters`` may name
FILTER_SETS = {
    "none": {},
    "one": {"country": "DE"},
    "three": {"country": "DE", "device": "mobile", "source": "google.com"},
}
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
#: the measured site's goals (name, event, page) and the funnel of all three, in this order:
#: the goals and funnel reports are timed with them
GOALS = [("Shop", None, "/shop/1"), ("Click", "click", None), ("Checkout", None, "/shop/2")]
FUNNEL = "bench"


def _session(
    rng: random.Random, visitors: int, when: dt.datetime, size: int, host: str
) -> list[dict]:
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
                "doc_uri": f"https://{host}{page}",
                "doc_title": page.title(),
            }
        )
        common["referrer"] = f"https://{host}/"
        when += dt.timedelta(seconds=rng.choice([5, 20, 60, 180, 600, 2400]))
    return views


def generate(rows: int, days: int, end: dt.date, seed: int = 1, host: str = SITE):
    """Visits of ``host`` in sessions of 1-8 views over ``days`` days up to ``end``, 2 % bots.

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
            todays.extend(_session(rng, visitors, start, size, host))
        todays.sort(key=lambda row: row["datetime"])
        made += len(todays)
        yield from todays


def add_funnel(host: str) -> None:
    """The site's goals and funnel (``GOALS``, ``FUNNEL``), unless it has them already."""
    with db.engine.begin() as conn:
        if find_funnel(conn, find_site(conn, host), FUNNEL) is not None:
            return
        for name, event, page in GOALS:
            add_goal(conn, host, name, event=event, page=page)
        add_funnel_of(conn, host, FUNNEL, [name for name, _event, _page in GOALS])


def site_rows(site: SiteInfo) -> int:
    return db.session.scalar(select(func.count()).where(Visit.site_id == site.id)) or 0


def register(host: str) -> SiteInfo:
    with db.engine.begin() as conn:
        return find_site(conn, host) or add_site(conn, host)


def fill(rows: int, other_rows: int, days: int, end: dt.date, fresh: bool) -> SiteInfo:
    """The measured site with ``rows`` visits and the other with ``other_rows``; returns the first.

    Every row goes through ``crumby.ingest.store`` (sites resolved from the page's
    host, sessions stitched, bots counted) in time order, BATCH visits at a time.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    site, other = register(SITE), register(OTHER)
    have = (site_rows(site), site_rows(other))
    if have == (rows, other_rows) and not fresh:
        print(f"reusing {have[0]:,} + {have[1]:,} visits", flush=True)
        return site
    db.session.execute(Visit.__table__.delete())
    db.session.execute(Event.__table__.delete())
    db.session.commit()
    started = time.perf_counter()
    streams = [generate(rows, days, end, seed=1, host=SITE)]
    if other_rows:
        streams.append(generate(other_rows, days, end, seed=2, host=OTHER))
    visits: list[dict] = []
    events: list[dict] = []
    stored = [0, 0]

    def flush() -> None:
        got = ingest.store(app, visits, events)
        stored[0] += got[0]
        stored[1] += got[1]
        visits.clear()
        events.clear()

    for n, row in enumerate(heapq.merge(*streams, key=lambda row: row["datetime"]), 1):
        visits.append(row)
        if n % 10 == 0:
            events.append(
                {
                    "cid": row["cid"],
                    "datetime": row["datetime"],
                    "doc_uri": row["doc_uri"],
                    "name": "click",
                    "value": row["doc_title"][:20],
                    "is_bot": row["is_bot"],
                }
            )
        if len(visits) == BATCH:
            flush()
            print(f"\r  {n:,} visits", end="", flush=True)
    flush()
    assert stored[0] == rows + other_rows, f"stored {stored[0]} of {rows + other_rows} visits"
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("visits", "events"):
            spec_of(conn).analyze(conn, table)
    print(
        f"\rfilled {rows:,} visits of {SITE} and {other_rows:,} of {OTHER} "
        f"({stored[1]:,} events) through the ingest pipeline in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return site


def timed(fn) -> tuple[float, float]:
    """Wall-clock and this process's CPU milliseconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def measure(
    query, site: SiteInfo, t0: dt.date, t1: dt.date, filters: Filters | None = None
) -> tuple[float, float, float]:
    """Cold wall time, warm wall time (median of 3) and warm CPU time (median of 3)."""

    # a query's own parameters: the measured site's funnel (``add_funnel``), the default interval
    params = parameters.resolve(query, site, {"funnel": FUNNEL})

    def run() -> None:
        run_query(query, site, t0, t1, filters, use_cache=False, params=params)

    db.engine.dispose()  # cold: a new pool, nothing prepared
    cold, _ = timed(run)
    warm = [timed(run) for _ in range(3)]
    return cold, statistics.median(w for w, _ in warm), statistics.median(c for _, c in warm)


def baseline(site: SiteInfo, t0: dt.date, t1: dt.date) -> float:
    lo, hi = dt.datetime.combine(t0, dt.time()), dt.datetime.combine(t1, dt.time())
    hi += dt.timedelta(days=1)
    stmt = text(
        "SELECT COUNT(*) FROM visits WHERE site_id = :s AND datetime >= :a AND datetime < :b"
    ).bindparams(s=site.id, a=lo, b=hi)
    with db.engine.connect() as conn:
        conn.execute(stmt)
        return statistics.median(timed(lambda: conn.execute(stmt).scalar())[0] for _ in range(3))


def table(
    site: SiteInfo,
    rows: int,
    ranges: dict[int, tuple[dt.date, dt.date]],
    base: dict[int, float],
    filter_set: dict[str, str],
    wanted: set[str] | None,
    unfiltered: dict[tuple[str, int], float],
    misses: list[str],
) -> None:
    """Time every (wanted) report under one filter set and print a table of the times.

    Without filters the times are kept in ``unfiltered``; with filters each range gets a
    column comparing with them (``x unf``), when they were measured first.
    """
    filters = parse_filters(filter_set)
    in_process = db.engine.dialect.name == "sqlite"
    compare = bool(filters) and bool(unfiltered)
    extra = f"{'x unf':>7}" if compare else ""
    header = (
        f"{'query':<28}{'30d cold':>10}{'30d warm':>10}{'cpu':>7}{'x base':>8}{extra}"
        f"{'365d cold':>11}{'365d warm':>11}{'cpu':>7}{'x base':>8}{extra}  target"
    )
    shown = "&".join(f"{k}={v}" for k, v in filters.items())
    title = f"reports of {site.host} ({rows:,} of the table's visits)"
    print(title + (f", {shown}" if shown else ""))
    print(header)
    print("-" * len(header))
    for scope in ("public", "private"):
        for query in list_queries(scope):
            if wanted and query.name not in wanted:
                continue
            cells, ok = [], True
            for n, (t0, t1) in ranges.items():
                cold, warm, cpu = measure(query, site, t0, t1, filters)
                # SQLite runs inside this process, so its CPU time is the query's own cost
                # even on a busy machine; a server's work shows only as wall time
                judged = cpu if in_process else warm
                ratio = warm / base[n] if base[n] else float("inf")
                width = 10 if n == 30 else 11
                cell = f"{cold:>{width}.0f}{warm:>{width}.0f}{cpu:>7.0f}{ratio:>8.1f}"
                if not filters:
                    unfiltered[(query.key, n)] = judged
                elif compare:
                    before = unfiltered.get((query.key, n))
                    cell += f"{judged / before:>7.2f}" if before else f"{'-':>7}"
                cells.append(cell)
                if judged > TARGETS_MS[n]:
                    ok = False
                    misses.append(f"{query.key} {n}d" + (f" ({shown})" if shown else ""))
            print(f"{query.key:<28}{''.join(cells)}  {'ok' if ok else 'MISS'}", flush=True)
    print()


def sizes(site: SiteInfo) -> None:
    """Rows of the measured site, and bytes on disk, of the views and of each rollup."""
    with db.engine.connect() as connection:
        spec = spec_of(connection)
        for table in ("visits", *(rollup.table.name for rollup in rollups.ROLLUPS)):
            rows = connection.execute(
                text(f"SELECT COUNT(*) FROM {table} WHERE site_id = :s"), {"s": site.id}
            ).scalar()
            size = spec.table_bytes(connection, table)
            shown = "size unknown" if size is None else f"{size / 2**20:,.0f} MiB (all sites)"
            print(f"{table:13} {rows:>10,} rows of {site.host}, {shown}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help=f"visits of {SITE}")
    parser.add_argument(
        "--other-rows", type=int, help=f"visits of {OTHER} in the same tables (default: --rows)"
    )
    parser.add_argument(
        "--end", type=dt.date.fromisoformat, default=END, help="the data's last day (YYYY-MM-DD)"
    )
    parser.add_argument("--span-days", type=int, default=365, help="days the visits cover")
    parser.add_argument("--database", help="SQLAlchemy URL (default: a SQLite file in /tmp)")
    parser.add_argument("--fresh", action="store_true", help="refill even if the table is full")
    parser.add_argument("--only", help="comma-separated query names")
    parser.add_argument(
        "--filters",
        default="none",
        help="comma-separated filter sets to time every report with: none (no filter), "
        "one (country=DE), three (country=DE, device=mobile, source=google.com)",
    )
    args = parser.parse_args()
    sets = [name.strip() for name in args.filters.split(",") if name.strip()]
    unknown = [name for name in sets if name not in FILTER_SETS]
    if unknown or not sets:
        parser.error(f"--filters: unknown set(s) {unknown}; choose from {', '.join(FILTER_SETS)}")
    if args.other_rows is None:
        args.other_rows = args.rows
    url = args.database or "sqlite:///" + os.path.join(
        tempfile.gettempdir(), f"crumby-bench-{args.rows}-{args.other_rows}.db"
    )
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "REPORT_TIMEOUT_SECONDS": 600, "REPORT_CACHE_SECONDS": 0}
    )
    ensure_schema(app)
    # the app's "today" is the data's last day (in the evening), whatever the wall clock says
    clock.pin(app, dt.datetime.combine(args.end, dt.time(23, 59)))
    with app.app_context():
        print(f"database: {db.engine.url.render_as_string(hide_password=True)}", flush=True)
        site = fill(args.rows, args.other_rows, args.span_days, args.end, args.fresh)
        add_funnel(SITE)
        end = args.end
        ranges = {n: (end - dt.timedelta(days=n - 1), end) for n in TARGETS_MS}
        base = {n: baseline(site, *r) for n, r in ranges.items()}
        print(
            f"baseline (indexed COUNT(*) of the range): 30 d {base[30]:.1f} ms, "
            f"365 d {base[365]:.1f} ms\n"
        )
        sizes(site)
        wanted = set(args.only.split(",")) if args.only else None
        misses: list[str] = []
        unfiltered: dict[tuple[str, int], float] = {}
        for name in sets:
            table(site, args.rows, ranges, base, FILTER_SETS[name], wanted, unfiltered, misses)
        print("\ntimes in ms; warm and cpu = median of 3 runs; cpu = this process's CPU time")
        print("targets (warm; on SQLite judged by cpu): 30 d < 250 ms, 365 d < 1500 ms")
        if unfiltered and len(sets) > 1:
            print("x unf = warm time with the filters / warm time without (on SQLite: cpu)")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if misses:
            print("over target: " + ", ".join(misses))


if __name__ == "__main__":
    main()
