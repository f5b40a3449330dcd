"""The demo mode: synthetic traffic that looks like a site's, on a database of its own."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from crumby import clock, demo
from crumby.extensions import db
from crumby.models import Event, Visit

MONDAY = dt.date(2026, 11, 16)


def test_generated_traffic_has_a_weekly_rhythm_and_a_plausible_mix(app):
    # the app's "now" is that Monday's last minute, whatever the wall clock says
    clock.pin(app, dt.datetime.combine(MONDAY, dt.time(23, 59)))
    with app.app_context():
        visits, events = demo.generate(days=28, sessions_per_day=40, seed=3)
        rows = db.session.execute(sa.select(Visit)).scalars().all()
        assert len(rows) == visits > 28 * 40  # sessions have several page views
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == events > 0

    first = MONDAY - dt.timedelta(days=27)
    assert {r.datetime.date() for r in rows} == {first + dt.timedelta(days=n) for n in range(28)}
    per_day = Counter(r.datetime.date() for r in rows if not r.is_bot)
    weekdays = [n for d, n in per_day.items() if d.weekday() < 5]
    weekends = [n for d, n in per_day.items() if d.weekday() >= 5]
    assert sum(weekends) / len(weekends) < 0.8 * sum(weekdays) / len(weekdays)

    bots = sum(r.is_bot for r in rows)
    assert 0 < bots < 0.08 * len(rows)  # is_bot mostly false
    people = [r for r in rows if not r.is_bot]
    assert len({r.country for r in people}) >= 10
    assert all(r.latitude is not None and r.longitude is not None for r in people)
    assert {r.device for r in people} == {"desktop", "mobile", "tablet"}
    assert len({r.browser for r in people}) >= 5 and len({r.lang for r in people}) >= 10
    assert len({r.doc_uri.split("?")[0] for r in people}) >= 8
    assert {r.utm_campaign for r in people} >= {"spring-menu", "weekly-bread", None}
    assert any(r.referrer and "google" in r.referrer for r in people)
    assert len({r.cid for r in people}) < len(people) / 2  # visitors view several pages and return
    with app.app_context():
        events = db.session.execute(sa.select(Event.name, Event.value, Event.doc_uri)).all()
    # only events the tracker really sends, each of them
    assert (
        {name for name, _, _ in events}
        == set(demo.EVENTS)
        == {
            "order",
            "download",
            "outbound",
            "404",
        }
    )
    for name, value, page in events:
        if name == "404":  # cmb.auto.js with data-404: the page's own URL
            assert value == page == demo.SITE + demo.NOT_FOUND[0]
        elif name == "download":  # a click on a file link: the file's URL
            assert (value, page) == (demo.MENU_FILE, demo.SITE + "/menu")
        elif name == "outbound":  # a click on a link to another host: its URL
            assert (value, page) == (demo.MAP, demo.SITE + "/contact")
        else:
            assert page == demo.SITE + "/order/thank-you" and value in {"bread", "cake", "catering"}


def test_the_demo_events_are_the_ones_the_trackers_send():
    """Every automatic event name of the demo is a name cmb.auto.js sends, and no other
    build sends it; the rest come from cmb.event calls on the demo site's pages."""
    static = Path(demo.__file__).parent / "static"
    auto, plain = (static / "cmb.auto.js").read_text(), (static / "cmb.js").read_text()
    automatic = {name for name, sender in demo.EVENTS.items() if sender == "cmb.auto.js"}
    assert automatic == {"download", "outbound", "404"}
    for name in automatic:
        assert f'"{name}"' in auto and f'"{name}"' not in plain
    template = (Path(demo.__file__).parent / "templates" / "dashboard" / "demo.html").read_text()
    assert 'data-event="order"' in template and "/cmb.auto.js" in template


def test_the_demo_site_has_a_file_to_download_and_a_not_found_page(app, client):
    app.config["DEMO"] = True
    page = client.get("/demo/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'src="/cmb.auto.js" data-site="example.com" defer' in html
    assert 'href="/demo/menu.pdf" download' in html and f'href="{demo.MAP}"' in html
    menu = client.get("/demo/menu.pdf")
    assert menu.status_code == 200 and menu.mimetype == "application/pdf"
    assert menu.data.startswith(b"%PDF-")
    gone = client.get("/demo/menu.html")
    assert gone.status_code == 404
    assert 'data-site="example.com" data-404 defer' in gone.get_data(as_text=True)
    app.config["DEMO"] = False
    assert client.get("/demo/menu.pdf").status_code == 404


def test_the_demo_site_exists_only_in_demo_mode(client):
    assert client.get("/demo/").status_code == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return response.status, response.read()


def test_crumby_demo_serves_ninety_days_without_touching_the_real_database(crumby_script, tmp_path):
    real = tmp_path / "real.db"
    demo_db = tmp_path / "demo.db"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CRUMBY_SQLALCHEMY_DATABASE_URI": f"sqlite:///{real}",
    }
    port = _free_port()
    args = [crumby_script, "demo", "--port", str(port), "--database", str(demo_db)]
    server = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                status, page = _get(base + "/")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "crumby demo did not answer within 90 s"
                time.sleep(0.5)
        assert status == 200
        # the demo's 90 days end on the server's today, which has traffic only up to the
        # server's clock (none at all just after midnight): ask for the 89 whole days before
        today = dt.date.fromisoformat(re.search(rb'data-today="([\d-]+)"', page)[1].decode())
        whole = f"from={today - dt.timedelta(days=89)}&to={today - dt.timedelta(days=1)}"
        status, body = _get(base + "/api/public/visits?" + whole)
        assert status == 200
        result = json.loads(body)
        assert result["site"] == demo.SITE_HOST
        views = [row[result["columns"].index("views")] for row in result["data"]]
        assert len(views) == 89 and min(views) > 0 and sum(views) > 20_000
        status, body = _get(
            base + f"/api/public/visits?from={today - dt.timedelta(days=90)}"
            f"&to={today - dt.timedelta(days=90)}"
        )
        day_before = json.loads(body)
        assert day_before["data"][0][day_before["columns"].index("views")] == 0  # 90 days, no more
        status, page = _get(base + "/demo/")
        assert status == 200 and b'src="/cmb.auto.js" data-site="example.com"' in page
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=10)
    assert "Log in as 'demo'" in out.decode()
    assert demo_db.exists()
    assert not real.exists()  # the configured database was never opened


def test_crumby_demo_refuses_the_configured_database(crumby_script, tmp_path):
    real = tmp_path / "real.db"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    env["CRUMBY_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{real}"
    result = subprocess.run(
        [crumby_script, "demo", "--database", str(real)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {real} is your configured database; the demo needs a file of its own (--database)"
    ]
    assert not real.exists()
