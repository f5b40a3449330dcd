"""Seeded sessions for the goals and funnel reports, and their answers computed in plain Python.

Visitors of a New York site (UTC-5 in winter) have several sessions each, some
starting just before local midnight and running past it; their views and
events reach the goals out of order, repeatedly, at the same second as a view,
shortly after a session's last view (still in it) and long after (in none).
The answers here never touch SQL: sessions are stitched again from the rows.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass

from tests import report_data as rd

HOST = "goals.example"
ZONE = "America/New_York"
SITE = "https://goals.example"
#: local days of the range; sessions start on the day before, inside and the day after it
T0, T1 = dt.date(2024, 1, 10), dt.date(2024, 1, 12)
NOW = dt.datetime(2024, 1, 20, 12, 0)
PAGES = ["/", "/pricing", "/docs", "/blog", "/pricing", "/docs"]
EVENTS = ["signup", "paid", "signup", "newsletter"]


@dataclass(frozen=True)
class Goal:
    name: str
    kind: str
    target: str


GOALS = [
    Goal("Docs", "page", "/docs"),
    Goal("Newsletter", "event", "newsletter"),
    Goal("Paid", "event", "paid"),
    Goal("Pricing", "page", "/pricing"),
    Goal("Signup", "event", "signup"),
    Goal("Unreached", "event", "never-sent"),
]
BY_NAME = {g.name: g for g in GOALS}
FUNNELS = {
    "checkout": ["Pricing", "Signup", "Paid"],
    "back-again": ["Pricing", "Docs", "Pricing"],
    "event-first": ["Signup", "Pricing"],
    "events-only": ["Signup", "Paid"],
    "long": ["Docs", "Pricing", "Signup", "Docs", "Pricing", "Signup", "Paid", "Newsletter"],
}


def build(seed: int = 5) -> rd.Seed:
    """Visits and events of 60 visitors, plus bots that reach every goal and count for none."""
    rng = random.Random(seed)
    out = rd.Seed(now=NOW)
    first = rd.to_utc(dt.datetime(2024, 1, 9, 18, 0), ZONE)
    for n in range(60):
        cid = f"v{n:02d}"
        when = first + dt.timedelta(minutes=rng.randrange(0, 600))
        taken: set[dt.datetime] = set()  # views' and events' instants: no two events share one
        for _s in range(rng.randrange(1, 5)):
            views = []
            for _v in range(rng.randrange(1, 7)):
                page = rng.choice(PAGES)
                suffix = rng.choice(["", "", "?plan=pro", "#faq"])
                views.append(when)
                out.visits.append(_view(cid, when, page + suffix))
                when += dt.timedelta(seconds=rng.randrange(20, 1500))
            last = views[-1]
            for _e in range(rng.randrange(0, 5)):
                placement = rng.random()
                if placement < 0.15:
                    at = rng.choice(views)  # the same second as a view
                elif placement < 0.3:
                    at = last + dt.timedelta(seconds=rng.randrange(1, 1790))  # after, still in it
                elif placement < 0.4:
                    at = views[0] - dt.timedelta(seconds=rng.randrange(1, 60))  # just before: none
                else:
                    at = views[0] + (last - views[0]) * rng.random()
                    at = at.replace(microsecond=0)
                if at in taken:
                    continue
                taken.add(at)
                out.events.append(_event(cid, at, rng.choice(EVENTS)))
            if rng.random() < 0.2:  # long after the session's last view: in no session
                at = last + dt.timedelta(minutes=rng.randrange(32, 50))
                out.events.append(_event(cid, at, rng.choice(EVENTS)))
                when = max(when, at)
            # the next session: more than 30 minutes after everything before it, past
            # midnight now and then
            when += dt.timedelta(minutes=rng.randrange(31, 900), seconds=rng.randrange(60))
    # a visitor who only sends events (an app): counted among the site's visitors
    out.events.append(_event("app-only", rd.to_utc(dt.datetime(2024, 1, 11, 9), ZONE), "signup"))
    # hand-made sessions around local midnight at the range's ends
    edge = [
        # starts before the range (Jan 9, 23:50 local), reaches every step after midnight
        ("edge-a", dt.datetime(2024, 1, 9, 23, 50), ["/pricing", "/docs"], ["signup", "paid"]),
        # starts on the last day (Jan 12, 23:55 local) and finishes the funnel on Jan 13
        ("edge-b", dt.datetime(2024, 1, 12, 23, 55), ["/pricing", "/docs"], ["signup", "paid"]),
        # starts the day after the range: never counts
        ("edge-c", dt.datetime(2024, 1, 13, 0, 5), ["/pricing"], ["signup", "paid"]),
    ]
    for cid, wall, pages, names in edge:
        at = rd.to_utc(wall, ZONE)
        for page in pages:
            out.visits.append(_view(cid, at, page))
            at += dt.timedelta(minutes=4)
        for name in names:
            out.events.append(_event(cid, at, name))
            at += dt.timedelta(minutes=3)
    # bots reach every goal inside the range and count for nothing
    at = rd.to_utc(dt.datetime(2024, 1, 11, 12), ZONE)
    for page in ("/pricing", "/docs"):
        out.visits.append({**_view("bot", at, page), "is_bot": True})
    for name in ("signup", "paid", "newsletter"):
        out.events.append({**_event("bot", at + dt.timedelta(minutes=1), name), "is_bot": True})
    return out


def _view(cid: str, when: dt.datetime, page: str) -> dict:
    return {
        "cid": cid,
        "datetime": when,
        "doc_uri": SITE + page,
        "doc_title": page,
        "is_bot": False,
    }


def _event(cid: str, when: dt.datetime, name: str) -> dict:
    return {
        "cid": cid,
        "datetime": when,
        "doc_uri": SITE + "/",
        "name": name,
        "value": None,
        "is_bot": False,
    }


# ---- the answers -------------------------------------------------------------------------


def _reaches(goal: Goal, row: dict, source: str) -> bool:
    if goal.kind == "page":
        return source == "view" and rd.path(row["doc_uri"]) == goal.target
    return source == "event" and row["name"] == goal.target


def expect_goals(
    seed: rd.Seed, goals: list[Goal], t0: dt.date = T0, t1: dt.date = T1, zone: str = ZONE
) -> list[list]:
    """``goal, visitors, conversions, conversion_rate`` rows, ranked as the report ranks them."""
    views = rd.in_range(seed.visits, t0, t1, zone)
    events = rd.in_range(seed.events, t0, t1, zone)
    everyone = {r["cid"] for r in views + events if r["cid"]}
    rows = []
    for goal in goals:
        hits = [r for r in views if _reaches(goal, r, "view")]
        hits += [r for r in events if _reaches(goal, r, "event")]
        visitors = len({r["cid"] for r in hits if r["cid"]})
        rate = visitors / len(everyone) if everyone else 0
        rows.append([goal.name, visitors, len(hits), rate])
    return sorted(rows, key=lambda r: (-r[1], -r[2], r[0]))


def python_sessions(seed: rd.Seed) -> list[list[dict]]:
    """Each visitor's people views split where more than 30 minutes pass without one."""
    by_cid: dict[str, list[dict]] = defaultdict(list)
    for row in seed.visits:
        if not row["is_bot"] and row["cid"]:
            by_cid[row["cid"]].append(row)
    found = []
    for views in by_cid.values():
        views.sort(key=lambda r: r["datetime"])
        current = [views[0]]
        for prev, row in zip(views, views[1:], strict=False):
            if (row["datetime"] - prev["datetime"]).total_seconds() > 1800:
                found.append(current)
                current = []
            current.append(row)
        found.append(current)
    return found


def expect_funnel(
    seed: rd.Seed, steps: list[str], t0: dt.date = T0, t1: dt.date = T1, zone: str = ZONE
) -> list[list]:
    """``step, goal, visitors, conversion_rate, dropoff`` rows of a funnel of goal names."""
    goals = [BY_NAME[name] for name in steps]
    reached: list[set[str]] = [set() for _ in goals]
    for session in python_sessions(seed):
        start, last = session[0]["datetime"], session[-1]["datetime"]
        if not t0 <= rd.local_day(start, zone) <= t1:
            continue
        cid = session[0]["cid"]
        end = last + dt.timedelta(minutes=30)
        occurrences = [(r["datetime"], 0, n, r, "view") for n, r in enumerate(session)]
        occurrences += [
            (r["datetime"], 1, n, r, "event")
            for n, r in enumerate(seed.events)
            if r["cid"] == cid and not r["is_bot"] and start <= r["datetime"] < end
        ]
        occurrences.sort(key=lambda o: o[:3])
        at = 0
        for k, goal in enumerate(goals):
            while at < len(occurrences) and not _reaches(
                goal, occurrences[at][3], occurrences[at][4]
            ):
                at += 1
            if at == len(occurrences):
                break
            reached[k].add(cid)
            at += 1
    first = len(reached[0])
    rows = []
    for k, goal in enumerate(goals):
        visitors = len(reached[k])
        dropoff = len(reached[k - 1]) - visitors if k else 0
        rows.append([k + 1, goal.name, visitors, visitors / first if first else 0, dropoff])
    return rows
