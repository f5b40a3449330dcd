"""Seeded visits/events for the report tests, and the answers computed in plain Python.

The expected answers never touch SQL: each ``expect_*`` function works from the
same Python rows that were inserted, so a wrong report query fails its test.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app

from crumby import ingest
from crumby.extensions import db
from crumby.sites import SiteInfo, add_site, find_site

T0 = dt.date(2024, 2, 26)  # a past range across a leap day
T1 = dt.date(2024, 3, 3)
EMPTY_DAY = dt.date(2024, 2, 29)  # only bots visit that day
SITE = "https://shop.example"
PAGES = ["/", "/pricing", "/blog/one", "/blog/two", "/contact"]
TITLES = {p: f"Title of {p}" for p in PAGES}
REFERRERS = [
    None,
    "",
    "https://www.google.com/search?q=x",
    "https://news.ycombinator.com/item?id=1",
    "https://duckduckgo.com/",
    SITE + "/",  # an internal link
]
BROWSERS = ["Firefox", "Chrome", "Safari", None]
PLATFORMS = ["Linux", "Windows", "iOS", None]
DEVICES = ["desktop", "mobile", "tablet", None]
LANGS = ["en-US", "de-de", "fr", None]
SCREENS = ["1920x1080", "390x844", None]
PLACES = [("DE", "Berlin", "Berlin"), ("US", "California", "San Jose"), ("FR", None, None)]
UTMS = [(None, None, None), ("newsletter", "email", "spring"), ("ads", "cpc", None)]


@dataclass
class Seed:
    """What was inserted, as plain Python."""

    visits: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    now: dt.datetime | None = None
    #: the site the rows were stored under (set by ``insert``)
    site: SiteInfo | None = None


def _visit(rng: random.Random, cid: str, when: dt.datetime, **extra) -> dict:
    page = rng.choice(PAGES)
    place = rng.choice(PLACES + [(None, None, None)])
    utm = rng.choice(UTMS)
    row = {
        "cid": cid,
        "datetime": when,
        "doc_uri": SITE + page,
        "doc_title": TITLES[page],
        "referrer": rng.choice(REFERRERS),
        "browser": rng.choice(BROWSERS),
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
        "is_bot": False,
    }
    row.update(extra)
    return row


def build_seed(now: dt.datetime, seed: int = 7) -> Seed:
    """About 200 visits over the range, bots, rows just outside it, recent rows for realtime."""
    rng = random.Random(seed)
    out = Seed(now=now)
    day = T0
    while day <= T1:
        if day != EMPTY_DAY:
            for n in range(rng.randint(3, 6)):
                cid = f"c{rng.randint(1, 12)}"
                start = dt.datetime.combine(day, dt.time(rng.randint(0, 22), rng.randint(0, 59)))
                when = start
                views = []
                for _ in range(rng.randint(1, 5)):  # a session: gaps up to 40 minutes
                    views.append(_visit(rng, cid, when))
                    when += dt.timedelta(minutes=rng.choice([1, 5, 29, 30, 31, 40]))
                out.visits.extend(views)
                if n == 0:  # sent from the last view, maybe in a later session than the click
                    out.events.append(
                        {
                            "cid": cid,
                            "datetime": views[-1]["datetime"],
                            "doc_uri": views[-1]["doc_uri"],
                            "name": "signup",
                            "value": "plan-a",
                        }
                    )
                out.events.append(
                    {
                        "cid": cid,
                        "datetime": start,
                        "doc_uri": views[0]["doc_uri"],
                        "name": "click",
                        "value": rng.choice(["a", None]),
                    }
                )
        bot_time = dt.datetime.combine(day, dt.time(12))
        out.visits.append(_visit(rng, "bot1", bot_time, is_bot=True, browser="Googlebot"))
        out.events.append(
            {"cid": "bot1", "datetime": bot_time, "name": "botclick", "value": "x", "is_bot": True}
        )
        day += dt.timedelta(days=1)
    # exactly on both edges of the half-open range: the first counts, the second does not
    first = dt.datetime.combine(T0, dt.time())
    after = dt.datetime.combine(T1 + dt.timedelta(days=1), dt.time())
    out.visits.append(_visit(rng, "edge", first))
    out.visits.append(_visit(rng, "edge", after))
    out.visits.append(_visit(rng, "edge", first - dt.timedelta(seconds=1)))
    out.events.append({"cid": "edge", "datetime": after, "name": "late", "value": None})
    # an event outside any session: its visitor has no view on the site
    out.events.append(
        {
            "cid": "c97",
            "datetime": first + dt.timedelta(hours=6),
            "doc_uri": SITE + "/pricing",
            "name": "click",
            "value": "app",
        }
    )
    # a session that starts late on the last day and goes on past midnight is the range's,
    # and no bounce, though its second view is outside the range
    late = dt.datetime.combine(T1, dt.time(23, 50))
    out.visits.append(_visit(rng, "late", late))
    out.visits.append(_visit(rng, "late", late + dt.timedelta(minutes=20)))
    # a tagged link and a fragment are the same page as the bare path (pages are paths)
    for minutes, page, suffix in ((0, "/pricing", "?utm_source=x"), (2, "/contact", "#map")):
        out.visits.append(
            _visit(
                rng,
                "c98",
                first + dt.timedelta(hours=4, minutes=minutes),
                doc_uri=SITE + page + suffix,
                doc_title=TITLES[page],
            )
        )
    # a spreadsheet formula as a page, for the CSV test
    out.visits.append(
        _visit(
            rng,
            "c99",
            first + dt.timedelta(hours=5),
            doc_uri='=HYPERLINK("http://x")',
            doc_title="+SUM(A1)",
            referrer=None,
        )
    )
    # recent visits for "right now": two inside the last 30 minutes, one outside
    out.visits.append(_visit(rng, "r1", now - dt.timedelta(minutes=5)))
    out.visits.append(_visit(rng, "r2", now - dt.timedelta(minutes=29)))
    out.visits.append(_visit(rng, "r2", now - dt.timedelta(minutes=10)))
    out.visits.append(_visit(rng, "r3", now - dt.timedelta(minutes=45)))
    out.visits.append(_visit(rng, "rbot", now - dt.timedelta(minutes=2), is_bot=True))
    return out


HOST = "shop.example"


def insert(seed: Seed, host: str = HOST, timezone: str = "UTC", public: bool = True) -> SiteInfo:
    """Register the seed's site and store its rows through the ingest pipeline, as hits are.

    Returns the site. The rows carry the site's id, so rows whose page is not on
    the site's host (a spreadsheet formula as a page) are stored too.
    """
    with db.engine.begin() as connection:
        if find_site(connection, host) is None:
            add_site(connection, host, timezone, public)
    with db.engine.begin() as connection:
        site = find_site(connection, host)
    ingest.store(
        current_app,
        [{**row, "site_id": site.id} for row in seed.visits],
        [{"is_bot": False, **row, "site_id": site.id} for row in seed.events],
    )
    # the Python answers order a visitor's views as stored: by time, ties in insertion order
    for n, row in enumerate(sorted(seed.visits, key=lambda r: r["datetime"])):
        row["id"] = n
    seed.site = site
    return site


# ---- two sites in two time zones ---------------------------------------------------------

BERLIN = "Europe/Berlin"  # CET/CEST: 2024-03-31 has 23 hours, 2024-10-27 has 25
KOLKATA = "Asia/Kolkata"  # +05:30 all year: its local midnight is 18:30 UTC
SPRING = (dt.date(2024, 3, 29), dt.date(2024, 4, 1))
AUTUMN = (dt.date(2024, 10, 25), dt.date(2024, 10, 28))
#: "now" for the two sites (UTC): Berlin's second 02:45 of its 25-hour day
ZONED_NOW = dt.datetime(2024, 10, 27, 1, 45)
#: wall-clock times viewed every day: around local midnight and UTC midnight (05:30 in Kolkata)
WALL_TIMES = [
    dt.time(0, 0),
    dt.time(0, 5),
    dt.time(0, 59, 59),
    dt.time(1, 30),
    dt.time(5, 29, 59),
    dt.time(5, 30),
    dt.time(12, 0),
    dt.time(22, 59, 59),
    dt.time(23, 30),
    dt.time(23, 59, 59),
]
SUFFIXES = ["", "", "?utm_source=news", "#top", "?ref=x&utm_source=ads"]


@dataclass(frozen=True)
class Zoned:
    """A site of the two-zone test: its pages live under /<prefix>/, its events are <prefix>-*."""

    host: str
    zone: str
    prefix: str
    #: local days with bots only, though rows of neighbouring local days carry their UTC date
    empty: tuple[dt.date, ...]
    #: more wall-clock times (with fold) around the zone's changes
    extra: tuple[tuple[dt.datetime, int], ...] = ()
    #: minutes before "now" of views for realtime (the last is a bot's)
    recent: tuple[int, ...] = ()


ZONED = (
    Zoned(
        "berlin.example",
        BERLIN,
        "de",
        empty=(dt.date(2024, 3, 30), dt.date(2024, 10, 26)),
        extra=(
            (dt.datetime(2024, 3, 31, 1, 59, 59), 0),  # the last second of CET...
            (dt.datetime(2024, 3, 31, 3, 0), 0),  # ...and the first of CEST, one second later
            (dt.datetime(2024, 10, 27, 2, 30), 0),  # 02:30 CEST
            (dt.datetime(2024, 10, 27, 2, 30), 1),  # 02:30 CET, an hour later
            (dt.datetime(2024, 10, 27, 2, 59, 59), 1),
        ),
        recent=(5, 10, 29, 45, 2),
    ),
    Zoned(
        "kolkata.example",
        KOLKATA,
        "in",
        empty=(dt.date(2024, 3, 31), dt.date(2024, 10, 28)),
        recent=(1, 31, 3),
    ),
)


def build_zoned_seed(site: Zoned, now: dt.datetime = ZONED_NOW, seed: int = 11) -> Seed:
    """Views and events of one site near its local midnights, over SPRING and AUTUMN and a day
    either side; visitor ids are shared with the other site, pages and event names are not."""
    rng = random.Random(f"{seed}-{site.host}")
    out = Seed(now=now)
    url = f"https://{site.host}"

    def view(cid: str, when: dt.datetime, **extra) -> dict:
        row = _visit(rng, cid, when, **extra)
        page = row["doc_uri"][len(SITE) :] if row["doc_uri"].startswith(SITE) else "/"
        suffix = rng.choice(SUFFIXES)
        row["doc_uri"] = f"{url}/{site.prefix}{page}{suffix}"
        row["doc_title"] = f"{site.prefix.upper()} {TITLES[page]}"
        if "utm_source=" in suffix:
            row["utm_source"] = suffix.rsplit("=", 1)[1]
        if row["referrer"] == SITE + "/":
            row["referrer"] = url + "/"  # a link within the site
        return row

    def people(when: dt.datetime) -> None:
        cid = f"v{rng.randint(1, 6)}"
        out.visits.append(view(cid, when))
        if rng.random() < 0.5:  # a second view, up to 40 minutes later: maybe the next day
            later = when + dt.timedelta(minutes=rng.choice([1, 20, 30, 31, 40]))
            out.visits.append(view(cid, later))
        if rng.random() < 0.4:
            value = rng.choice(["a", None])
            out.events.append(
                {"cid": cid, "datetime": when, "name": f"{site.prefix}-click", "value": value}
            )

    spans = [(SPRING[0] - dt.timedelta(days=1), SPRING[1] + dt.timedelta(days=1))]
    spans.append((AUTUMN[0] - dt.timedelta(days=1), AUTUMN[1] + dt.timedelta(days=1)))
    for first, last in spans:
        for day in days(first, last):
            noon = to_utc(dt.datetime.combine(day, dt.time(12)), site.zone)
            out.visits.append(view("bot1", noon, is_bot=True, browser="Googlebot"))
            out.events.append(
                {"cid": "bot1", "datetime": noon, "name": "botclick", "value": "x", "is_bot": True}
            )
            if day in site.empty:
                continue
            for wall in WALL_TIMES:
                people(to_utc(dt.datetime.combine(day, wall), site.zone))
            # a session that starts ten minutes before local midnight and goes on after it
            late = to_utc(dt.datetime.combine(day, dt.time(23, 50)), site.zone)
            out.visits.append(view("night", late))
            out.visits.append(view("night", late + dt.timedelta(minutes=20)))
            out.events.append(
                {"cid": "night", "datetime": late, "name": f"{site.prefix}-signup", "value": None}
            )
    for wall, fold in site.extra:
        people(to_utc(wall, site.zone, fold))
    for n, minutes in enumerate(site.recent, start=1):
        bot = n == len(site.recent)
        cid = "rbot" if bot else f"r{(n + 1) // 2}"
        out.visits.append(view(cid, now - dt.timedelta(minutes=minutes), is_bot=bot))
    # the empty days stay empty, though sessions of the evening before would run into them
    for name in ("visits", "events"):
        rows = getattr(out, name)
        kept = [
            r
            for r in rows
            if r.get("is_bot") or local_day(r["datetime"], site.zone) not in site.empty
        ]
        setattr(out, name, kept)
    return out


def insert_zoned() -> dict[str, Seed]:
    """Both sites registered (public) and seeded; their seeds by host, each knowing its site."""
    seeds = {}
    for site in ZONED:
        seed = build_zoned_seed(site)
        insert(seed, site.host, site.zone, public=True)
        seeds[site.host] = seed
    return seeds


# ---- the answers, in Python -------------------------------------------------------------


def local(when: dt.datetime, zone: str = "UTC") -> dt.datetime:
    """The wall-clock time in ``zone`` of a stored (naive UTC) datetime, by zoneinfo."""
    return when.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def local_day(when: dt.datetime, zone: str = "UTC") -> dt.date:
    """The local date in ``zone`` of a stored (naive UTC) datetime."""
    return local(when, zone).date()


def to_utc(wall: dt.datetime, zone: str, fold: int = 0) -> dt.datetime:
    """The stored (naive UTC) datetime of a wall-clock time in ``zone`` (``fold=1``: the
    second of a repeated hour)."""
    aware = wall.replace(tzinfo=ZoneInfo(zone), fold=fold)
    return aware.astimezone(dt.UTC).replace(tzinfo=None)


def in_range(rows: list[dict], t0: dt.date = T0, t1: dt.date = T1, zone: str = "UTC") -> list[dict]:
    """The people's rows whose local date in ``zone`` is one of t0..t1."""
    return [r for r in rows if t0 <= local_day(r["datetime"], zone) <= t1 and not r.get("is_bot")]


def days(t0: dt.date = T0, t1: dt.date = T1) -> list[dt.date]:
    return [t0 + dt.timedelta(days=i) for i in range((t1 - t0).days + 1)]


def path(uri: str | None) -> str | None:
    """A page's path without query string or fragment, as the page reports group it."""
    if not uri:
        return None
    parts = urlsplit(uri)
    return parts.path or ("/" if parts.netloc else None)


def sessions(rows: list[dict]) -> list[list[dict]]:
    """A visitor's views with gaps of at most 30 minutes form one session.

    Pass every stored view, not just a range's: a session that began before the
    range is not one of the range's sessions, even if its later views are in it.
    """
    by_cid: dict[str, list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["datetime"], r["id"])):
        by_cid[row["cid"]].append(row)
    found = []
    for views in by_cid.values():
        current = [views[0]]
        for prev, row in zip(views, views[1:], strict=False):
            if (row["datetime"] - prev["datetime"]).total_seconds() > 1800:
                found.append(current)
                current = []
            current.append(row)
        found.append(current)
    return found


def _duration(session: list[dict]) -> float:
    return (session[-1]["datetime"] - session[0]["datetime"]).total_seconds()


def _share(rows: list[dict], key) -> dict:
    groups: dict = defaultdict(set)
    for row in rows:
        groups[key(row)].add(row["cid"])
    return {k: len(v) for k, v in groups.items()}


def _label(value):
    return "(unknown)" if value is None else value


def host(url: str | None) -> str:
    """The host name of a URL, as stored beside each visit: no port, no user, lower case."""
    return (urlsplit(url).hostname or "").rstrip(".") if url and "//" in url else ""


def sessions_starting(
    seed: Seed, t0: dt.date = T0, t1: dt.date = T1, zone: str = "UTC"
) -> list[list[dict]]:
    """The sessions a range counts: those whose first view is a person's, inside the range."""
    return [s for s in sessions(seed.visits) if in_range(s[:1], t0, t1, zone)]


# ---- filters, in Python ----------------------------------------------------------------


def source(row: dict) -> str | None:
    """Where a view came from: the referring host without www., (direct) for none or a link
    within the site, None for a referrer without a host."""
    if not row["referrer"]:
        return "(direct)"
    referrer_host = host(row["referrer"])
    if not referrer_host:
        return None
    if referrer_host == host(row["doc_uri"]):
        return "(direct)"
    return referrer_host.removeprefix("www.")


def _language(row: dict) -> str | None:
    return row["lang"].lower() if row["lang"] else None


#: filter name -> how a view's value is read
VIEW_ATTRIBUTES = {
    "page": lambda r: path(r["doc_uri"]),
    "country": lambda r: r["country"],
    "browser": lambda r: r["browser"],
    "os": lambda r: r["platform"],
    "device": lambda r: r["device"],
    "language": _language,
    "region": lambda r: r["subdivision_1"],
    "city": lambda r: r["city"],
}
#: filter name -> how a session's value is read from its entry view
SESSION_ATTRIBUTES = {
    "entry_page": lambda r: path(r["doc_uri"]),
    "source": source,
    "utm_source": lambda r: r["utm_source"],
    "utm_medium": lambda r: r["utm_medium"],
    "utm_campaign": lambda r: r["utm_campaign"],
}


def entry_views(seed: Seed) -> dict[int, dict]:
    """Each stored view's session's first view, by ``id(row)`` (every view, bots too)."""
    found = {}
    for session in sessions(seed.visits):
        for row in session:
            found[id(row)] = session[0]
    return found


def matches(row: dict, filters: dict, entries: dict[int, dict], whole: bool = False) -> bool:
    """Whether a view passes every filter; ``whole``: read view attributes from the entry view
    of its session too (session figures count whole sessions)."""
    entry = entries[id(row)]
    for name, value in filters.items():
        if name in VIEW_ATTRIBUTES:
            have = VIEW_ATTRIBUTES[name](entry if whole else row)
        else:
            have = SESSION_ATTRIBUTES[name](entry)
        want = None if value == "(none)" else value
        if name == "language" and want is not None:  # ASCII letters' case is ignored
            want = "".join(c.lower() if "A" <= c <= "Z" else c for c in want)
        if have != want:
            return False
    return True


def event_session(event: dict, seed: Seed, entries: dict[int, dict]) -> dict | None:
    """The entry view of the session an event falls in: that of its visitor's newest view at
    most 30 minutes before it (or at the same instant), or None."""
    before = [
        r
        for r in seed.visits
        if r["cid"] == event["cid"]
        and dt.timedelta(0) <= event["datetime"] - r["datetime"] <= dt.timedelta(minutes=30)
    ]
    if not before:
        return None
    return entries[id(max(before, key=lambda r: r["datetime"]))]


def event_matches(event: dict, filters: dict, seed: Seed, entries: dict[int, dict]) -> bool:
    """Whether an event passes every filter: ``page`` on the page it was sent from, the rest
    on its session's entry view (None outside any session)."""
    entry = event_session(event, seed, entries) if filters else None
    for name, value in filters.items():
        if name == "page":
            have = path(event.get("doc_uri"))
        elif entry is None:
            have = None
        elif name in VIEW_ATTRIBUTES:
            have = VIEW_ATTRIBUTES[name](entry)
        else:
            have = SESSION_ATTRIBUTES[name](entry)
        want = None if value == "(none)" else value
        if name == "language" and want is not None:
            want = "".join(c.lower() if "A" <= c <= "Z" else c for c in want)
        if have != want:
            return False
    return True


def expect(
    name: str,
    seed: Seed,
    t0: dt.date = T0,
    t1: dt.date = T1,
    zone: str = "UTC",
    filters: dict | None = None,
) -> list[list]:
    """The rows query ``name`` must answer for the local days t0..t1 of a site in ``zone``
    under ``filters`` (order handled by the test)."""
    filters = filters or {}
    entries = entry_views(seed)
    rows = [r for r in in_range(seed.visits, t0, t1, zone) if matches(r, filters, entries)]

    def starting() -> list[list[dict]]:
        """The range's sessions whose entry view passes the filters."""
        found = sessions_starting(seed, t0, t1, zone)
        return [s for s in found if matches(s[0], filters, entries, whole=True)]

    def day_of(row: dict) -> dt.date:
        return local_day(row["datetime"], zone)

    if name == "visits":
        return [
            [
                d.isoformat(),
                len({r["cid"] for r in rows if day_of(r) == d}),
                sum(1 for r in rows if day_of(r) == d),
            ]
            for d in days(t0, t1)
        ]
    if name == "summary":
        found = starting()
        return [
            [
                len({r["cid"] for r in rows}),
                len(rows),
                len(found),
                sum(1 for s in found if len(s) == 1) / len(found) if found else 0,
                sum(_duration(s) for s in found) / len(found) if found else 0,
            ]
        ]
    if name == "sessions":
        found = starting()
        answer = []
        for d in days(t0, t1):
            todays = [s for s in found if day_of(s[0]) == d]
            if todays:
                answer.append(
                    [
                        d.isoformat(),
                        len(todays),
                        sum(1 for s in todays if len(s) == 1) / len(todays),
                        sum(_duration(s) for s in todays) / len(todays),
                    ]
                )
            else:
                answer.append([d.isoformat(), 0, 0, 0])
        return answer
    if name == "entry_pages":
        counts = Counter(_label(path(s[0]["doc_uri"])) for s in starting())
        return [[k, v] for k, v in counts.items()]
    if name == "exit_pages":  # of the matching views of the range's sessions, the exits
        found = sessions_starting(seed, t0, t1, zone)
        exits = Counter(
            _label(path(s[-1]["doc_uri"])) for s in found if matches(s[-1], filters, entries)
        )
        views = Counter(
            _label(path(r["doc_uri"])) for s in found for r in s if matches(r, filters, entries)
        )
        return [[page, n, views[page], n / views[page]] for page, n in exits.items()]
    if name == "time_on_page":
        # a view's time: until the next view of its session (none for a session's last)
        spent = {}
        for s in sessions(seed.visits):
            for view, after in zip(s, s[1:], strict=False):
                spent[id(view)] = (after["datetime"] - view["datetime"]).total_seconds()
        by_page: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            if path(r["doc_uri"]):
                by_page[path(r["doc_uri"])].append(r)
        answer = []
        for page, views in by_page.items():
            times = [spent[id(r)] for r in views if id(r) in spent]
            average = sum(times) / len(times) if times else None
            answer.append([page, len(views), len(times), average])
        return answer
    if name == "documents":
        paged = [r for r in rows if path(r["doc_uri"])]
        views = Counter(path(r["doc_uri"]) for r in paged)
        return [
            [
                page,
                max(r["doc_title"] for r in paged if path(r["doc_uri"]) == page),
                n,
                len({r["cid"] for r in paged if path(r["doc_uri"]) == page}),
            ]
            for page, n in views.items()
        ]
    if name == "locations":
        known = [r for r in rows if r["country"]]
        views = Counter(r["country"] for r in known)
        return [
            [c, len({r["cid"] for r in known if r["country"] == c}), n] for c, n in views.items()
        ]
    if name == "platforms":

        def key(r):
            return (_label(r["platform"]), _label(r["browser"]))

        views = Counter(key(r) for r in rows)
        return [[*k, len({r["cid"] for r in rows if key(r) == k}), n] for k, n in views.items()]
    simple = {
        "browsers": "browser",
        "operating_systems": "platform",
        "devices": "device",
        "screens": "screen_res",
    }
    if name in simple:
        return [[k, v] for k, v in _share(rows, lambda r: _label(r[simple[name]])).items()]
    if name == "languages":
        share = _share(rows, lambda r: _label(r["lang"] and r["lang"].lower()))
        return [[k, v] for k, v in share.items()]
    if name == "realtime":
        recent = [
            r
            for r in seed.visits
            if not r["is_bot"]
            and seed.now - dt.timedelta(minutes=30) <= r["datetime"] <= seed.now
            and matches(r, filters, entries)
        ]
        return [[len({r["cid"] for r in recent}), len(recent)]]
    if name == "current_pages":  # the page each recent visitor's session is on now
        latest = {id(s[-1]) for s in sessions(seed.visits)}
        recent = [
            r
            for r in seed.visits
            if not r["is_bot"]
            and id(r) in latest
            and path(r["doc_uri"])
            and seed.now - dt.timedelta(minutes=30) <= r["datetime"] <= seed.now
            and matches(r, filters, entries)
        ]
        pages = {path(r["doc_uri"]) for r in recent}
        return [[p, len({r["cid"] for r in recent if path(r["doc_uri"]) == p})] for p in pages]
    if name == "private/events":
        events = in_range(seed.events, t0, t1, zone)
        events = [e for e in events if event_matches(e, filters, seed, entries)]
        counts = Counter((e["name"], e["value"] or "") for e in events)
        return [
            [*k, n, len({e["cid"] for e in events if (e["name"], e["value"] or "") == k})]
            for k, n in counts.items()
        ]
    if name == "private/locations":
        known = [r for r in rows if r["country"]]

        def key(r):
            return (r["country"], r["subdivision_1"] or "", r["city"] or "")

        views = Counter(key(r) for r in known)
        return [[*k, len({r["cid"] for r in known if key(r) == k}), n] for k, n in views.items()]
    if name == "private/origins":
        linked = [r for r in rows if r["referrer"] and host(r["referrer"]) != host(r["doc_uri"])]
        views = Counter(r["referrer"] for r in linked)
        return [
            [k, n, len({r["cid"] for r in linked if r["referrer"] == k})] for k, n in views.items()
        ]
    if name == "private/referrers":

        def source(r):  # the referring host without www.
            return "(direct)" if not r["referrer"] else host(r["referrer"]).removeprefix("www.")

        kept = [r for r in rows if not r["referrer"] or host(r["referrer"]) != host(r["doc_uri"])]
        return [[k, n] for k, n in Counter(source(r) for r in kept).items()]
    if name == "private/campaigns":
        tagged = [r for r in rows if r["utm_source"] or r["utm_medium"] or r["utm_campaign"]]

        def key(r):
            return (r["utm_source"] or "", r["utm_medium"] or "", r["utm_campaign"] or "")

        views = Counter(key(r) for r in tagged)
        return [[*k, n, len({r["cid"] for r in tagged if key(r) == k})] for k, n in views.items()]
    raise KeyError(name)
