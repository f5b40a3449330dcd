"""Synthetic traffic for the demo mode and the benchmarks.

The rows look like what the tracker stores: a daily and weekly rhythm with a
slow upward trend, visitors who come back, a plausible mix of pages,
referrers, campaigns, countries (with coordinates and time zones), browsers,
devices and languages, events, and a few bots. The events are only ones the
tracker really sends (``EVENTS``): cmb.auto.js's automatic ones, and the
``order`` that the shop's thank-you page would send with ``cmb.event``. Everything is stored through
the ingest pipeline (``crumby.ingest``), as the tracker's hits are, under the
public demo site ``example.com``.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

from flask import current_app

from crumby import clock, ingest
from crumby.extensions import db
from crumby.models import Event, Visit
from crumby.sites import SiteError, add_site, find_site

SITE = "https://www.example.com"
#: the demo site's registered host (``www.`` is folded away)
SITE_HOST = "example.com"

#: (path, title, weight as a landing page)
PAGES = [
    ("/", "Example Bakery – fresh bread every morning", 30),
    ("/menu", "Menu · Example Bakery", 14),
    ("/blog/sourdough-starter", "How to keep a sourdough starter alive · Example Bakery", 12),
    ("/blog/croissant-layers", "The 27 layers of a croissant · Example Bakery", 7),
    ("/blog/rye-bread", "Dark rye bread, step by step · Example Bakery", 5),
    ("/order", "Order online · Example Bakery", 6),
    ("/about", "About us · Example Bakery", 4),
    ("/contact", "Contact · Example Bakery", 3),
    ("/jobs", "Jobs: baker wanted · Example Bakery", 2),
    ("/order/thank-you", "Thank you for your order · Example Bakery", 0),
]

#: (referrer URL or None for direct, utm (source, medium, campaign) or None, weight)
REFERRERS = [
    (None, None, 34),
    ("https://www.google.com/", None, 28),
    ("https://duckduckgo.com/", None, 5),
    ("https://www.bing.com/", None, 3),
    ("https://news.ycombinator.com/item?id=41234567", None, 4),
    ("https://www.reddit.com/r/Breadit/comments/abc123/", None, 6),
    ("https://t.co/xyz", ("twitter", "social", "spring-menu"), 4),
    ("https://www.facebook.com/", ("facebook", "social", "spring-menu"), 3),
    ("https://mail.example.net/", ("newsletter", "email", "weekly-bread"), 6),
    ("https://www.instagram.com/", None, 4),
    ("https://github.com/example/bakery-site", None, 1),
]

#: (country, continent, city, subdivision, latitude, longitude, time zone, languages, weight)
PLACES = [
    ("DE", "EU", "Berlin", "Land Berlin", 52.52, 13.40, "Europe/Berlin", ["de-DE", "en-US"], 18),
    ("DE", "EU", "Munich", "Bavaria", 48.14, 11.58, "Europe/Berlin", ["de-DE"], 7),
    ("US", "NA", "New York", "New York", 40.71, -74.01, "America/New_York", ["en-US"], 14),
    (
        "US",
        "NA",
        "San Francisco",
        "California",
        37.77,
        -122.42,
        "America/Los_Angeles",
        ["en-US", "es-US"],
        8,
    ),
    ("GB", "EU", "London", "England", 51.51, -0.13, "Europe/London", ["en-GB"], 9),
    ("FR", "EU", "Paris", "Île-de-France", 48.86, 2.35, "Europe/Paris", ["fr-FR"], 8),
    (
        "NL",
        "EU",
        "Amsterdam",
        "North Holland",
        52.37,
        4.90,
        "Europe/Amsterdam",
        ["nl-NL", "en-US"],
        5,
    ),
    ("AT", "EU", "Vienna", "Vienna", 48.21, 16.37, "Europe/Vienna", ["de-AT"], 4),
    ("CH", "EU", "Zurich", "Zurich", 47.38, 8.54, "Europe/Zurich", ["de-CH", "fr-CH"], 3),
    ("ES", "EU", "Madrid", "Madrid", 40.42, -3.70, "Europe/Madrid", ["es-ES"], 4),
    ("IT", "EU", "Milan", "Lombardy", 45.46, 9.19, "Europe/Rome", ["it-IT"], 3),
    ("PL", "EU", "Warsaw", "Mazovia", 52.23, 21.01, "Europe/Warsaw", ["pl-PL"], 3),
    ("SE", "EU", "Stockholm", "Stockholm", 59.33, 18.07, "Europe/Stockholm", ["sv-SE", "en-US"], 2),
    ("CA", "NA", "Toronto", "Ontario", 43.65, -79.38, "America/Toronto", ["en-CA", "fr-CA"], 4),
    ("BR", "SA", "São Paulo", "São Paulo", -23.55, -46.63, "America/Sao_Paulo", ["pt-BR"], 3),
    ("IN", "AS", "Bengaluru", "Karnataka", 12.97, 77.59, "Asia/Kolkata", ["en-IN"], 4),
    ("JP", "AS", "Tokyo", "Tokyo", 35.68, 139.69, "Asia/Tokyo", ["ja-JP"], 3),
    ("AU", "OC", "Sydney", "New South Wales", -33.87, 151.21, "Australia/Sydney", ["en-AU"], 3),
    ("ZA", "AF", "Cape Town", "Western Cape", -33.92, 18.42, "Africa/Johannesburg", ["en-ZA"], 1),
    ("MX", "NA", "Mexico City", "CDMX", 19.43, -99.13, "America/Mexico_City", ["es-MX"], 2),
]

#: the versions of each platform a demo visitor may have (picked from its id: the random
#: sequence, and so every other column, stays what it was before the OS version was kept)
OS_VERSIONS = {
    "Windows": ["10"],  # Windows 11 still sends "Windows NT 10.0"
    "macOS": ["14.6", "15.1"],
    "iOS": ["17.6", "18.1", "18.1"],
    "Android": ["14", "15"],
    "Linux": [None],
}

#: (platform, browser, versions, device, screens, weight)
AGENTS = [
    (
        "Windows",
        "Chrome",
        ["130.0", "131.0"],
        "desktop",
        ["1920x1080", "1536x864", "2560x1440"],
        24,
    ),
    ("Windows", "Edge", ["130.0", "131.0"], "desktop", ["1920x1080", "1366x768"], 8),
    ("Windows", "Firefox", ["132.0", "133.0"], "desktop", ["1920x1080"], 6),
    ("macOS", "Safari", ["17.6", "18.1"], "desktop", ["1440x900", "1512x982", "2560x1440"], 10),
    ("macOS", "Chrome", ["131.0"], "desktop", ["1440x900", "1728x1117"], 7),
    ("Linux", "Firefox", ["133.0"], "desktop", ["1920x1080", "2560x1440"], 4),
    ("iOS", "Mobile Safari", ["17.6", "18.1"], "mobile", ["390x844", "393x852", "430x932"], 20),
    (
        "Android",
        "Chrome Mobile",
        ["130.0", "131.0"],
        "mobile",
        ["412x915", "360x800", "384x854"],
        17,
    ),
    ("Android", "Samsung Internet", ["26.0"], "mobile", ["360x780"], 3),
    ("iPadOS", "Mobile Safari", ["18.1"], "tablet", ["820x1180", "1024x1366"], 3),
]

BOTS = [("Googlebot", "2.1"), ("bingbot", "2.0"), ("AhrefsBot", "7.0")]

#: an old address that links elsewhere still point to: the site's "not found" page
NOT_FOUND = ("/menu.html", "Page not found · Example Bakery")
#: the menu as a file to download, and the map the contact page links to
MENU_FILE = SITE + "/menu.pdf"
MAP = "https://www.openstreetmap.org/"
#: every event name the demo stores, with what sends it: cmb.auto.js for the first three
#: (a file link, a link to another host, a page with data-404), cmb.event for the last
EVENTS = {
    "download": "cmb.auto.js",
    "outbound": "cmb.auto.js",
    "404": "cmb.auto.js",
    "order": "cmb.event('order', item) on the thank-you page",
}

#: how the next page follows from the current one
NEXT_PAGES = {
    "/": ["/menu", "/blog/sourdough-starter", "/order", "/about"],
    "/menu": ["/order", "/", "/contact"],
    NOT_FOUND[0]: ["/", "/menu"],
    "/order": ["/order/thank-you", "/menu"],
    "/blog/sourdough-starter": ["/blog/croissant-layers", "/blog/rye-bread", "/"],
    "/blog/croissant-layers": ["/blog/sourdough-starter", "/menu"],
    "/blog/rye-bread": ["/blog/sourdough-starter", "/order"],
}

#: share of visits in each UTC hour, before the place's time zone shifts it
HOURLY = [1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 8, 8, 8, 8, 8, 9, 9, 8, 6, 4, 3, 2]
TZ_OFFSET = {"EU": 1, "NA": -6, "SA": -3, "AS": 7, "OC": 10, "AF": 2}


@dataclass
class Visitor:
    """Who comes back: the same id, place, browser and language each time."""

    cid: str
    ip: str
    place: tuple
    agent: tuple
    version: str
    screen: str
    lang: str


def _os_version(platform: str, cid: str) -> str | None:
    versions = OS_VERSIONS.get(platform, [None])
    return versions[int(cid[-4:], 16) % len(versions)]


def _pick(rng: random.Random, items: list, weight_index: int = -1):
    return rng.choices(items, weights=[item[weight_index] for item in items])[0]


def _new_visitor(rng: random.Random) -> Visitor:
    place, agent = _pick(rng, PLACES), _pick(rng, AGENTS)
    return Visitor(
        cid=f"{rng.getrandbits(64):016x}",
        ip=f"203.0.113.{rng.randrange(1, 255)}",
        place=place,
        agent=agent,
        version=rng.choice(agent[2]),
        screen=rng.choice(agent[4]),
        lang=rng.choice(place[7]),
    )


def _visit_row(visitor: Visitor, when: dt.datetime, path: str, title: str, referrer, utm):
    country, continent, city, region, lat, lon, tz = visitor.place[:7]
    platform, browser, _versions, device = visitor.agent[:4]
    url = SITE + path
    if utm:
        url += f"?utm_source={utm[0]}&utm_medium={utm[1]}&utm_campaign={utm[2]}"
    return {
        "ip": visitor.ip,
        "cid": visitor.cid,
        "datetime": when,
        "doc_title": title,
        "doc_uri": url,
        "doc_enc": "UTF-8",
        "referrer": referrer,
        "_referrer": referrer,
        "platform": platform,
        "browser": browser,
        "version": visitor.version,
        "os_version": _os_version(platform, visitor.cid),
        "device": device,
        "is_bot": False,
        "screen_res": visitor.screen,
        "screen_depth": "24-bit",
        "continent": continent,
        "country": country,
        "subdivision_1": region,
        "subdivision_2": None,
        "city": city,
        "latitude": lat,
        "longitude": lon,
        "accuracy_radius": 20,
        "time_zone": tz,
        "lang": visitor.lang,
        "_lang": f"{visitor.lang},{visitor.lang[:2]};q=0.9,en;q=0.5",
        "utm_source": utm[0] if utm else None,
        "utm_medium": utm[1] if utm else None,
        "utm_campaign": utm[2] if utm else None,
        "utm_term": None,
        "utm_content": None,
    }


def _sessions_per_day(
    day_index: int, days: int, day: dt.date, base: float, rng: random.Random
) -> int:
    """Fewer visits at weekends, a slow trend upwards, a campaign bump and some noise."""
    weekly = 0.62 if day.weekday() >= 5 else 1.0 + 0.05 * (day.weekday() == 1)
    trend = 0.8 + 0.4 * day_index / max(days - 1, 1)
    bump = 1.0 + 0.9 * math.exp(-(((day_index - days * 0.55) / 2.0) ** 2))  # a newsletter day
    return max(0, int(rng.gauss(base * weekly * trend * bump, base * 0.08)))


def register_site(public: bool = True, timezone: str = "UTC") -> None:
    """Register the demo site unless it is (the README's first command needs no login)."""
    with db.engine.begin() as connection:
        if find_site(connection, SITE_HOST) is None:
            try:
                add_site(connection, SITE_HOST, timezone, public)
            except SiteError:  # registered by another process a moment ago
                pass


#: the demo's goals (name, event, page) and its funnel over them, so both cards have numbers
DEMO_GOALS = (
    ("Viewed the menu", None, "/menu"),
    ("Opened the order form", None, "/order"),
    ("Ordered", "order", None),
)
DEMO_FUNNEL = ("Order", [name for name, _event, _page in DEMO_GOALS])


def register_goals() -> None:
    """Give the demo site its goals and funnel, unless it has goals already."""
    from crumby.goals import GoalError, add_funnel, add_goal, list_goals

    try:
        with db.engine.begin() as connection:
            site = find_site(connection, SITE_HOST)
            if site is None or list_goals(connection, site):
                return
            for name, event, page in DEMO_GOALS:
                add_goal(connection, SITE_HOST, name, event=event, page=page)
            add_funnel(connection, SITE_HOST, *DEMO_FUNNEL)
    except GoalError:  # made by another process a moment ago: its transaction is undone
        pass


def generate(
    days: int = 90,
    sessions_per_day: float = 160,
    seed: int = 2026,
    today: dt.date | None = None,
    batch: int = 20_000,
    now: dt.datetime | None = None,
) -> tuple[int, int]:
    """Store synthetic visits and events for the ``days`` days up to ``today``; return counts.

    Rows go through the ingest pipeline a few days at a time, in time order,
    so sessions are stitched exactly as live hits would be. ``now`` (default:
    the app's clock) is the moment after which nothing is generated.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    register_site()
    rng = random.Random(seed)
    now = now or clock.now(app)
    today = today or now.date()
    visitors: list[Visitor] = []
    visit_rows: list[dict] = []
    event_rows: list[dict] = []
    counts = [0, 0]

    def flush(before: dt.datetime | None) -> None:
        """Store the rows before ``before`` (all with None); later ones wait for their day."""
        if before is None:
            visits, events = visit_rows[:], event_rows[:]
        else:
            visits = [row for row in visit_rows if row["datetime"] < before]
            events = [row for row in event_rows if row["datetime"] < before]
        visit_rows[:] = [row for row in visit_rows if before and row["datetime"] >= before]
        event_rows[:] = [row for row in event_rows if before and row["datetime"] >= before]
        stored = ingest.store(app, visits, events)
        counts[0] += stored[0]
        counts[1] += stored[1]

    hours = list(range(24))
    for index in range(days):
        day = today - dt.timedelta(days=days - 1 - index)
        start = dt.datetime.combine(day, dt.time())
        for _ in range(_sessions_per_day(index, days, day, sessions_per_day, rng)):
            returning = visitors and rng.random() < 0.3
            visitor = rng.choice(visitors) if returning else _new_visitor(rng)
            if not returning:
                visitors.append(visitor)
            shift = TZ_OFFSET.get(visitor.place[1], 0)
            hour = (rng.choices(hours, weights=HOURLY)[0] - shift) % 24
            when = start + dt.timedelta(hours=hour, seconds=rng.randrange(3600))
            if when > now:
                continue
            if rng.random() < 0.03:
                _bot_visit(visitor, when, rng, visit_rows)
                continue
            _session(visitor, when, rng, visit_rows, event_rows, now)
        # sessions never reach past the next day, so everything before it is complete
        if len(visit_rows) >= batch:
            flush(start + dt.timedelta(days=1))
    flush(None)
    return counts[0], counts[1]


def _bot_visit(visitor: Visitor, when: dt.datetime, rng: random.Random, rows: list) -> None:
    path, title, _ = rng.choice(PAGES)
    row = _visit_row(visitor, when, path, title, None, None)
    name, version = rng.choice(BOTS)
    row.update(
        browser=name,
        version=version,
        os_version=None,
        platform="Other",
        device="bot",
        is_bot=True,
        lang=None,
    )
    rows.append(row)


def _session(visitor, when, rng, visit_rows, event_rows, now) -> None:
    """One visit: a landing page from a referrer, then a few pages and maybe events."""
    path, title, _ = _pick(rng, PAGES)
    referrer, utm, _ = _pick(rng, REFERRERS)
    if referrer and rng.random() < 0.03:  # an old link to a page that is gone
        path, title = NOT_FOUND
    titles = {p: t for p, t, _ in PAGES}
    length = 1 if rng.random() < 0.42 else rng.randint(2, 6)  # ~42% bounce
    for step in range(length):
        if when > now:
            return
        visit_rows.append(
            _visit_row(
                visitor,
                when,
                path,
                title,
                referrer if step == 0 else SITE + "/",
                utm if step == 0 else None,
            )
        )
        if path == "/order/thank-you":
            item = rng.choice(["bread", "cake", "catering"])
            event_rows.append(_event(visitor, when, path, title, "order", item))
        if path == NOT_FOUND[0]:
            event_rows.append(_event(visitor, when, path, title, "404", SITE + path))
        if path == "/menu" and rng.random() < 0.15:
            event_rows.append(_event(visitor, when, path, title, "download", MENU_FILE))
        if path == "/contact" and rng.random() < 0.3:
            event_rows.append(_event(visitor, when, path, title, "outbound", MAP))
        path = rng.choice(NEXT_PAGES.get(path, ["/", "/menu"]))
        title = titles[path]
        when += dt.timedelta(seconds=rng.randint(15, 420))


def _event(visitor: Visitor, when, path: str, title: str, name: str, value: str) -> dict:
    return {
        "ip": visitor.ip,
        "cid": visitor.cid,
        "datetime": when,
        "doc_title": title,
        "doc_uri": SITE + path,
        "name": name,
        "value": value,
        "is_bot": False,
    }


# ---- the demo mode -----------------------------------------------------------------

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"


def expand(path: str) -> str:
    """The demo database's absolute path."""
    import os

    return os.path.abspath(os.path.expanduser(path))


def demo_app(path: str, host: str = "127.0.0.1", port: int = 5000):
    """An app on the demo's own SQLite file, in demo mode, whatever the settings say.

    The configured database is never touched: the URI is replaced, and a demo
    file that is the configured SQLite database is refused.
    """
    import secrets

    import click

    from crumby import create_app, settings

    target = expand(path)
    try:
        configured = settings.resolve(None).get("SQLALCHEMY_DATABASE_URI") or ""
    except settings.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if configured.startswith("sqlite:///") and expand(configured[len("sqlite:///") :]) == target:
        raise click.ClickException(
            f"{target} is your configured database; the demo needs a file of its own (--database)"
        )
    overrides = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{target}",
        "DEMO": True,
        "DOMAIN": f"{host}:{port}",
    }
    if not settings.resolve(None).get("SECRET_KEY"):
        overrides["SECRET_KEY"] = secrets.token_hex(32)  # a fresh one per run: logins just work
    return create_app(overrides)


def prepare(reset: bool = False) -> tuple[int, int]:
    """Fill the demo database once (or afresh with ``reset``) and make sure the demo user exists."""
    from sqlalchemy import delete, func, select

    from crumby import accounts

    newest = db.session.scalar(select(func.max(Visit.datetime)))
    if newest is not None and newest.date() < clock.now().date() - dt.timedelta(days=2):
        reset = True  # a demo from last month would show an empty "last 7 days"
    if reset:
        db.session.execute(delete(Event))
        db.session.execute(delete(Visit))
        db.session.commit()
    register_site()
    register_goals()
    if not db.session.scalar(select(func.count()).select_from(Visit)):
        generate()
    if accounts.find_user(DEMO_USER) is None:
        accounts.add_user(DEMO_USER, DEMO_PASSWORD)
    return (
        db.session.scalar(select(func.count()).select_from(Visit)),
        db.session.scalar(select(func.count()).select_from(Event)),
    )
