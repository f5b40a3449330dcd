"""The template helpers give the same answers on every database."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crumby import ingest
from crumby.extensions import db
from crumby.reporting import dialects
from crumby.sites import add_site
from tests.test_reporting_api import make_app

README = Path(__file__).parents[1] / "README.md"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "q" / "public").mkdir(parents=True)
    return tmp_path / "q"


#: a report's UTC window, as the helpers get it
WINDOW = (dt.datetime(2024, 2, 1), dt.datetime(2024, 4, 1))


@pytest.fixture
def site(app):
    """The only site: public, in UTC."""
    with app.app_context(), db.engine.begin() as connection:
        return add_site(connection, "s.example", "UTC", public=True)


@pytest.fixture
def custom(database_url, tmp_path, folder, app, site):
    return make_app(database_url, tmp_path, QUERY_FOLDER=str(folder)).test_client()


def test_unknown_dialect_fails_loudly():
    with pytest.raises(dialects.DialectError, match="oracle"):
        dialects.helpers("oracle", "UTC", *WINDOW, {})


def test_helpers_refuse_statement_separators_and_non_numbers():
    helpers = dialects.helpers("sqlite", "UTC", *WINDOW, {})
    with pytest.raises(dialects.DialectError):
        helpers["day"]("v.datetime); DROP TABLE visits; --")
    with pytest.raises(dialects.DialectError):
        helpers["add_days"]("v.datetime", "1 day')")


def test_date_helpers_agree_on_every_database(custom, folder):
    # 2024-03-03 is a Sunday: its week starts on Monday 2024-02-26
    (folder / "public" / "dates.sql").write_text(
        "SELECT {{ day(':t1') }} AS d, {{ week(':t1') }} AS w, {{ month(':t1') }} AS m,\n"
        "       {{ hour(add_minutes(':t1', 150)) }} AS h,\n"
        "       {{ day(add_days(':t1', -3)) }} AS back,\n"
        "       {{ seconds_between(':t0', ':t1_next') }} AS secs,\n"
        "       {{ ratio('1', '4') }} AS quarter, {{ ratio('1', '0') }} AS by_zero\n"
    )
    body = custom.get("/api/public/dates?from=2024-03-02&to=2024-03-03").get_json()
    row = dict(zip(body["columns"], body["data"][0], strict=True))
    assert row == {
        "d": "2024-03-03",
        "w": "2024-02-26",
        "m": "2024-03-01",
        "h": "2024-03-03T02:00:00Z",
        "back": "2024-02-29",
        "secs": 2 * 86400,
        "quarter": 0.25,
        "by_zero": None,
    }


def test_url_host_on_every_database(app, custom, folder, site):
    uris = ("HTTPS://Example.COM/a/b?c", "http://x.example", "no-scheme/path")
    when = dt.datetime(2024, 3, 1, 10)
    ingest.store(
        app, [{"cid": "u", "referrer": uri, "datetime": when, "site_id": site.id} for uri in uris]
    )
    (folder / "public" / "hosts.sql").write_text(
        "SELECT referrer, {{ url_host('referrer') }} AS host FROM visits ORDER BY id\n"
    )
    data = custom.get("/api/public/hosts").get_json()["data"]
    assert data == [
        ["HTTPS://Example.COM/a/b?c", "example.com"],
        ["http://x.example", "x.example"],
        ["no-scheme/path", None],
    ]


def test_the_readme_example_report_works(app, custom, folder, site):
    source = re.search(r"### Writing a query.*?```sql\n(.*?)```", README.read_text(), re.S)[1]
    hours = [dt.datetime(2024, 3, 1, 9, m) for m in (0, 10, 59)] + [dt.datetime(2024, 3, 2, 23, 5)]
    with app.app_context(), db.engine.begin() as connection:
        other = add_site(connection, "other.example")
    page = "https://s.example/"
    visits = [{"cid": "a", "datetime": when, "doc_uri": page, "is_bot": False} for when in hours]
    visits.append({"cid": "bot", "datetime": hours[0], "doc_uri": page, "is_bot": True})
    # another site's views in the same hours are not this site's
    visits += [
        {"cid": "o", "datetime": when, "site_id": other.id, "is_bot": False} for when in hours
    ]
    ingest.store(app, visits)
    (folder / "public" / "hourly.sql").write_text(source)
    body = custom.get(
        "/api/public/hourly",
        query_string={"site": "s.example", "from": "2024-03-01", "to": "2024-03-02"},
    ).get_json()
    assert body["title"] == "Pages per hour" and body["chart"] == "line"
    expected = Counter(h.strftime("%Y-%m-%dT%H:00:00Z") for h in hours)
    assert body["data"] == [[k, v] for k, v in sorted(expected.items())]


#: stored UTC instants around Berlin's changes and Kolkata's midnights and month ends
INSTANTS = [
    dt.datetime(2024, 3, 30, 22, 59, 59),
    dt.datetime(2024, 3, 30, 23, 0),
    dt.datetime(2024, 3, 31, 0, 59, 59),
    dt.datetime(2024, 3, 31, 1, 0),
    dt.datetime(2024, 3, 31, 18, 29, 59),
    dt.datetime(2024, 3, 31, 18, 45),
    dt.datetime(2024, 3, 31, 21, 59, 59),
    dt.datetime(2024, 3, 31, 22, 0),
    dt.datetime(2024, 10, 27, 0, 30),
    dt.datetime(2024, 10, 27, 1, 30),
    dt.datetime(2024, 10, 27, 22, 59, 59),
    dt.datetime(2024, 10, 27, 23, 0),
]


def _local_buckets(when: dt.datetime, zone: str) -> list:
    """day, hour, week and month of a UTC instant in ``zone``, worked out by zoneinfo."""
    local = when.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone))
    day = local.date()
    return [
        day.isoformat(),
        local.replace(minute=0, second=0).isoformat(),
        (day - dt.timedelta(days=day.weekday())).isoformat(),
        day.replace(day=1).isoformat(),
    ]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kolkata"])
def test_local_time_helpers_follow_the_sites_zone(app, database_url, tmp_path, folder, zone):
    """day/hour/week/month are the site's local buckets, on every database, across changes."""
    with app.app_context(), db.engine.begin() as connection:
        site = add_site(connection, "zoned.example", zone, public=True)
        other = add_site(connection, "other.example", "UTC", public=True)
    rows = [
        {"cid": f"c{n}", "datetime": when, "site_id": s.id, "is_bot": False}
        for n, when in enumerate(INSTANTS)
        for s in (site, other)
    ]
    ingest.store(app, rows)
    (folder / "public" / "buckets.sql").write_text(
        "SELECT {{ day('v.datetime') }} AS d, {{ hour('v.datetime') }} AS h,\n"
        "       {{ week('v.datetime') }} AS w, {{ month('v.datetime') }} AS m\n"
        "FROM visits v WHERE v.site_id = :site_id\n"
        "  AND v.datetime >= :t0 AND v.datetime < :t1_next ORDER BY v.datetime\n"
    )
    client = make_app(database_url, tmp_path, QUERY_FOLDER=str(folder)).test_client()
    body = client.get(
        "/api/public/buckets",
        query_string={"site": "zoned.example", "from": "2024-03-30", "to": "2024-10-28"},
    ).get_json()
    assert body["timezone"] == zone
    first = dt.datetime.combine(dt.date(2024, 3, 30), dt.time(), ZoneInfo(zone))
    inside = [w for w in INSTANTS if w >= first.astimezone(dt.UTC).replace(tzinfo=None)]
    assert body["data"] == [_local_buckets(when, zone) for when in inside]
