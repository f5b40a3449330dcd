"""The time series' buckets (interval=hour|day|week|month, local time) and compare=previous,
on every database, against answers worked out in Python with zoneinfo."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest

from crumby import ingest
from crumby.extensions import db
from crumby.sites import add_site
from tests.test_reporting_api import make_app

#: "now": the afternoon of the day Europe falls back (a 25-hour local day in Berlin)
NOW = dt.datetime(2024, 10, 27, 15, 20)
#: the visits span this UTC window
SPAN = (dt.datetime(2024, 9, 10), dt.datetime(2024, 10, 27, 15, 0))


def _visits(site_id: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    span = int((SPAN[1] - SPAN[0]).total_seconds())
    rows = []
    for _ in range(900):
        when = SPAN[0] + dt.timedelta(seconds=rng.randrange(span))
        rows.append(
            {
                "cid": f"c{rng.randrange(120)}",
                "datetime": when,
                "site_id": site_id,
                "is_bot": rng.random() < 0.1,
            }
        )
    rows.sort(key=lambda r: r["datetime"])
    return rows


@pytest.fixture(params=["Europe/Berlin", "Asia/Kolkata"])
def zoned(request, app, database_url, tmp_path):
    """A client, the zone and the stored visits of a site in that zone (plus another site's)."""
    zone = request.param
    with app.app_context(), db.engine.begin() as connection:
        site = add_site(connection, "zoned.example", zone, public=True)
        other = add_site(connection, "other.example", "UTC", public=True)
    rows = _visits(site.id, 1)
    ingest.store(app, rows + _visits(other.id, 2))
    client = make_app(database_url, tmp_path, now=NOW).test_client()
    return client, zone, [r for r in rows if not r["is_bot"]]


def _expected(rows: list[dict], zone: str, t0: dt.date, t1: dt.date, bucket) -> dict:
    """{bucket label: [users, views]} over the local days t0..t1, from Python alone."""
    tz = ZoneInfo(zone)
    users, views = defaultdict(set), defaultdict(int)
    for r in rows:
        local = r["datetime"].replace(tzinfo=dt.UTC).astimezone(tz)
        if t0 <= local.date() <= t1:
            users[bucket(local)].add(r["cid"])
            views[bucket(local)] += 1
    return {k: [len(users[k]), views[k]] for k in views}


def _hour_label(local: dt.datetime) -> str:
    return local.replace(minute=0, second=0, microsecond=0).isoformat()


def _local_hours(zone: str, t0: dt.date, t1: dt.date) -> list[str]:
    """Every local hour of the days t0..t1, in time order (a fall-back day has 25)."""
    tz = ZoneInfo(zone)
    start = dt.datetime.combine(t0, dt.time(), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(t1 + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
    hours = []
    while start < end:
        hours.append(_hour_label(start.astimezone(tz)))
        start += dt.timedelta(hours=1)
    return hours


def _get(client, **args):
    response = client.get("/api/public/visits", query_string={"site": "zoned.example", **args})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_hourly_buckets_are_every_local_hour_of_two_days(zoned):
    client, zone, rows = zoned
    body = _get(client, days="2", interval="hour")  # today (pinned) and yesterday
    t0, t1 = dt.date(2024, 10, 26), dt.date(2024, 10, 27)
    assert (body["t0"], body["t1"]) == (t0.isoformat(), t1.isoformat())
    assert body["columns"] == ["hour", "users", "views"]
    assert body["parameters"] == {"interval": "hour"}
    hours = _local_hours(zone, t0, t1)
    assert len(hours) == (49 if zone == "Europe/Berlin" else 48)
    counts = _expected(rows, zone, t0, t1, _hour_label)
    assert sum(v for _, v in counts.values()) > 0
    assert body["data"] == [[h, *counts.get(h, [0, 0])] for h in hours]


def test_weekly_and_monthly_buckets_are_local(zoned):
    client, zone, rows = zoned
    t0, t1 = dt.date(2024, 9, 20), dt.date(2024, 10, 27)
    week = _get(client, **{"from": t0.isoformat(), "to": t1.isoformat(), "interval": "week"})
    assert week["columns"] == ["week", "users", "views"]
    counts = _expected(rows, zone, t0, t1, lambda d: d.date() - dt.timedelta(d.weekday()))
    mondays = [dt.date(2024, 9, 16) + dt.timedelta(weeks=n) for n in range(6)]
    assert week["data"] == [[m.isoformat(), *counts.get(m, [0, 0])] for m in mondays]
    month = _get(client, **{"from": t0.isoformat(), "to": t1.isoformat(), "interval": "month"})
    assert month["columns"] == ["month", "users", "views"]
    counts = _expected(rows, zone, t0, t1, lambda d: d.date().replace(day=1))
    firsts = [dt.date(2024, 9, 1), dt.date(2024, 10, 1)]
    assert month["data"] == [[m.isoformat(), *counts[m]] for m in firsts]
    # a visitor counts once per bucket, not once per day: fewer than the days' sum
    days = _get(client, **{"from": t0.isoformat(), "to": t1.isoformat()})
    assert days["columns"] == ["date", "users", "views"]
    assert sum(r[1] for r in month["data"]) < sum(r[1] for r in days["data"])
    assert sum(r[2] for r in month["data"]) == sum(r[2] for r in days["data"])


def test_the_daily_series_is_the_default_and_unchanged(zoned):
    client, zone, rows = zoned
    plain = _get(client, days="10")
    assert plain["columns"] == ["date", "users", "views"]
    assert plain["data"] == _get(client, days="10", interval="day")["data"]
    counts = _expected(rows, zone, dt.date(2024, 10, 18), dt.date(2024, 10, 27), lambda d: d.date())
    assert plain["data"] == [
        [
            (dt.date(2024, 10, 18) + dt.timedelta(n)).isoformat(),
            *counts.get(dt.date(2024, 10, 18) + dt.timedelta(n), [0, 0]),
        ]
        for n in range(10)
    ]


@pytest.mark.parametrize(
    "args",
    [
        {"interval": "year"},
        {"interval": ""},
        {"interval": "HOUR"},
        {"interval": "hour", "days": "8"},
        {"interval": "hour", "from": "2024-10-01", "to": "2024-10-27"},
        {"compare": "next"},
        {"compare": ""},
    ],
)
def test_bad_interval_or_compare_is_400_naming_it(zoned, args):
    client, _zone, _rows = zoned
    response = client.get("/api/public/visits", query_string={"site": "zoned.example", **args})
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == next(iter(args))
    assert body["error"]


def test_hourly_serves_up_to_seven_days(zoned):
    client, zone, _rows = zoned
    body = _get(client, days="7", interval="hour")
    assert [r[0] for r in body["data"]] == _local_hours(
        zone, dt.date(2024, 10, 21), dt.date(2024, 10, 27)
    )


def test_compare_previous_gives_the_period_before_with_the_same_buckets(zoned):
    client, zone, rows = zoned
    body = _get(client, days="2", interval="hour", compare="previous")
    prior = body["previous"]
    assert (prior["t0"], prior["t1"]) == ("2024-10-24", "2024-10-25")
    assert prior["columns"] == ["hour", "users", "views"]
    t0, t1 = dt.date(2024, 10, 24), dt.date(2024, 10, 25)
    counts = _expected(rows, zone, t0, t1, _hour_label)
    assert prior["data"] == [[h, *counts.get(h, [0, 0])] for h in _local_hours(zone, t0, t1)]
    assert "changes" not in body  # a series has no single figure to compare
    month = _get(client, **{"from": "2024-10-01", "to": "2024-10-31", "compare": "previous"})
    assert (month["previous"]["t0"], month["previous"]["t1"]) == ("2024-08-31", "2024-09-30")


@pytest.fixture
def sessions(app, database_url, tmp_path):
    """Yesterday: three sessions, one of a single view; today: three, two of a single view."""
    with app.app_context(), db.engine.begin() as connection:
        site = add_site(connection, "s.example", "UTC", public=True)

    def views(cid: str, day: dt.date, n: int, hour: int) -> list[dict]:
        start = dt.datetime.combine(day, dt.time(hour))
        return [
            {
                "cid": cid,
                "datetime": start + dt.timedelta(minutes=5 * k),
                "site_id": site.id,
                "is_bot": False,
                "doc_uri": "https://s.example/",
                "doc_path": "/",
            }
            for k in range(n)
        ]

    yesterday, today = dt.date(2024, 10, 26), dt.date(2024, 10, 27)
    rows = (
        views("d", yesterday, 2, 8)
        + views("e", yesterday, 2, 9)
        + views("f", yesterday, 1, 10)
        + views("a", today, 1, 8)
        + views("b", today, 1, 9)
        + views("c", today, 2, 10)
    )
    ingest.store(app, sorted(rows, key=lambda r: r["datetime"]))
    return make_app(database_url, tmp_path, now=NOW).test_client()


def test_summary_changes_say_points_for_rates_and_percent_for_counts(sessions):
    body = sessions.get(
        "/api/public/summary",
        query_string={"site": "s.example", "days": "1", "compare": "previous"},
    ).get_json()
    columns = body["columns"]
    now = dict(zip(columns, body["data"][0], strict=True))
    before = dict(zip(columns, body["previous"]["data"][0], strict=True))
    assert (now["views"], before["views"]) == (4, 5)
    # MariaDB answers a division to four decimals
    assert now["bounce_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert before["bounce_rate"] == pytest.approx(1 / 3, abs=1e-4)
    changes = body["changes"]
    assert changes["bounce_rate"] == {"change": 33.3, "unit": "pp"}
    assert changes["views"] == {"change": -20.0, "unit": "%"}
    assert changes["visitors"] == {"change": 0.0, "unit": "%"}
    # the previous period's figures are the summary of that period asked for directly
    direct = sessions.get(
        "/api/public/summary",
        query_string={"site": "s.example", "from": "2024-10-26", "to": "2024-10-26"},
    ).get_json()
    assert direct["data"] == body["previous"]["data"]


def test_a_rate_after_an_empty_period_has_no_change(sessions):
    body = sessions.get(
        "/api/public/summary",
        query_string={
            "site": "s.example",
            "from": "2024-10-26",
            "to": "2024-10-26",
            "compare": "previous",
        },
    ).get_json()
    assert body["previous"]["data"] == [[0, 0, 0, 0, 0]]
    assert body["changes"]["bounce_rate"] == {"change": None, "unit": "pp"}
    assert body["changes"]["views"] == {"change": None, "unit": "%"}
