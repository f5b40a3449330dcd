"""Time the dashboard's first view on a big SQLite database.

    python bench/dashboard.py                    # 1 million visits over 365 days, 30-day view
    python bench/dashboard.py --days 30          # all 1 million inside the viewed 30 days
    python bench/dashboard.py --rows 200000 --database /tmp/small.db

The database is filled once with crumby.demo's synthetic traffic (an existing
file with at least --rows visits is reused). Then, on a fresh app (so the
report cache is cold), it measures:

1. the first view in headless Chromium: from navigation to every report and
   the headline drawn (``#dashboard[data-ready]``), HTML plus all API calls;
2. the same page again, with the server's report cache warm;
3. each request of that view one after another through the test client, to
   show where the time goes.

Baseline, measured in the same run: an indexed COUNT(*) of the 30 days'
visits; ratios are against it. Targets (issue 14): first view within 1.0 s, and
within 0.3 s with the server's report cache warm.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time

from sqlalchemy import func, select, text

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from crumby import create_app, demo  # noqa: E402
from crumby.database import ensure_schema  # noqa: E402
from crumby.extensions import db  # noqa: E402
from crumby.models import Visit  # noqa: E402
from tests.browser.conftest import CHROMIUM_FLAGS, LiveServer, chromium_executable  # noqa: E402

TARGET_S = 1.0
TARGET_WARM_S = 0.3
VIEW_DAYS = 30
VISITS_PER_SESSION = 2.6  # what crumby.demo's sessions average, weekends and trend included


def make_app(path: str):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SECRET_KEY": "bench",
            "GEOIP2_DATABASE_NAME": os.path.join(tempfile.gettempdir(), "no-geoip.mmdb"),
        }
    )
    ensure_schema(app)
    return app


def fill(app, rows: int, days: int) -> int:
    """Generate about ``rows`` visits over ``days`` days, unless the file has them already."""
    with app.app_context():
        have = db.session.scalar(select(func.count()).select_from(Visit))
        if have >= rows * 0.95:
            print(f"reusing {have:,} visits", flush=True)
            return have
        db.session.execute(Visit.__table__.delete())
        db.session.commit()
        started = time.perf_counter()
        per_day = rows / days / VISITS_PER_SESSION
        visits, events = demo.generate(days=days, sessions_per_day=per_day, seed=1)
        print(
            f"generated {visits:,} visits and {events:,} events over {days} days "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        return visits


def checkpoint(app) -> None:
    """Fold the write-ahead log into the file, as a running Crumby's SQLite does over time."""
    with app.app_context():
        db.session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.commit()


def baseline(app) -> float:
    """Seconds for an indexed COUNT(*) over the viewed range (median of 3)."""
    today = dt.datetime.now(dt.UTC).date()
    start = dt.datetime.combine(today - dt.timedelta(days=VIEW_DAYS - 1), dt.time())
    times = []
    with app.app_context():
        for _ in range(3):
            t = time.perf_counter()
            db.session.scalar(select(func.count()).where(Visit.datetime >= start))
            times.append(time.perf_counter() - t)
    return sorted(times)[1]


def browser_view(app) -> tuple[float, float, int]:
    """Seconds for the first (cold) and a second (warm) view in Chromium, and the API calls."""
    from playwright.sync_api import sync_playwright

    with LiveServer(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), headless=True, args=CHROMIUM_FLAGS
        )
        figures = []
        calls = 0
        for _ in range(2):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            api_calls = []
            page.on(
                "request",
                lambda r, calls=api_calls: calls.append(r.url) if "/api/" in r.url else None,
            )
            started = time.perf_counter()
            page.goto(f"{server.url}/?days={VIEW_DAYS}")
            page.wait_for_selector("#dashboard[data-ready]", timeout=120_000)
            figures.append(time.perf_counter() - started)
            calls = len(api_calls)
            errors = page.locator("#status.error").count()
            if errors:
                raise SystemExit("the dashboard showed an error: " + page.inner_text("#status"))
            context.close()
        browser.close()
    return figures[0], figures[1], calls


def request_breakdown(app) -> list[tuple[str, float]]:
    """Each request of the first view, one after another, on a cold cache."""
    client = app.test_client()
    today = dt.datetime.now(dt.UTC).date()
    t0 = today - dt.timedelta(days=VIEW_DAYS - 1)
    before = (t0 - dt.timedelta(days=VIEW_DAYS), t0 - dt.timedelta(days=1))
    rng = f"from={t0}&to={today}"
    urls = [f"/?days={VIEW_DAYS}", "/api/public"]
    with app.app_context():
        from crumby.reporting import list_queries

        urls += [f"/api/public/{q.name}?{rng}" for q in list_queries("public")]
    urls.append(f"/api/public/summary?from={before[0]}&to={before[1]}")
    timings = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        timings.append((url, time.perf_counter() - started))
        if response.status_code != 200:
            raise SystemExit(
                f"{url}: HTTP {response.status_code} {response.get_data(as_text=True)}"
            )
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="visits to generate")
    parser.add_argument("--days", type=int, default=365, help="days the visits spread over")
    parser.add_argument(
        "--database",
        default=os.path.join(tempfile.gettempdir(), "crumby-bench-dashboard.db"),
        help="SQLite file (reused when it already holds --rows visits)",
    )
    args = parser.parse_args()

    visits = fill(make_app(args.database), args.rows, args.days)
    checkpoint(make_app(args.database))
    base = baseline(make_app(args.database))
    cold, warm, calls = browser_view(make_app(args.database))
    steps = request_breakdown(make_app(args.database))

    print(f"\n{visits:,} visits over {args.days} days in SQLite; {VIEW_DAYS}-day view")
    print(f"baseline (indexed COUNT(*) of {VIEW_DAYS} days): {base * 1000:8.1f} ms")
    print(
        f"first view in Chromium (HTML + {calls} API calls, cold cache): {cold:6.2f} s"
        f"  = {cold / base:6.0f}x baseline  (target < {TARGET_S} s: "
        f"{'met' if cold < TARGET_S else 'MISSED'})"
    )
    print(
        f"second view (server's report cache warm):           {warm:6.2f} s"
        f"  (target < {TARGET_WARM_S} s: {'met' if warm < TARGET_WARM_S else 'MISSED'})"
    )
    print("\nwhere the time goes (each request alone, cold):")
    for url, seconds in sorted(steps, key=lambda s: -s[1]):
        print(f"  {seconds * 1000:8.1f} ms  {url}")
    print(f"  {sum(s for _, s in steps) * 1000:8.1f} ms  total, one after another")


if __name__ == "__main__":
    main()
