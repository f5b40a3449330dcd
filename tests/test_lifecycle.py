"""``crumby prune``, ``forget`` and ``export`` as a site owner uses them (contract 3 and 11).

Rows are stored through the ingest pipeline with a pinned clock, the commands
run through click's runner on the test database, and the tests look at what
is left: exact counts, the other sites and visitors untouched, the sessions
of the views that remain, the reports, and the exported rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess

import pytest
import sqlalchemy as sa

from crumby import cli as cli_module
from crumby import clock, ingest
from crumby.cli import cli
from crumby.extensions import db
from crumby.lifecycle import deletion, export
from crumby.models import Event, Site, Visit
from crumby.reporting.discovery import list_queries
from crumby.reporting.reports import run_query
from crumby.sites import add_site, find_site
from tests import report_data as rd

NOW = dt.datetime(2026, 3, 10, 12, 0)
DAY = dt.timedelta(days=1)
MINUTE = dt.timedelta(minutes=1)


# ---- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def pinned(app, monkeypatch):
    """The test app, pinned at NOW; every app the CLI builds sees the time the test app sees."""
    clock.pin(app, NOW)
    build = cli_module.build_app

    def pinned_build():
        built = build()
        clock.pin(built, clock.now(app))
        return built

    monkeypatch.setattr(cli_module, "build_app", pinned_build)
    return app


def register(app, host: str, timezone: str = "UTC", public: bool = True) -> int:
    with app.app_context(), db.engine.begin() as connection:
        return add_site(connection, host, timezone, public).id


def view(host: str, cid: str | None, when: dt.datetime, page: str = "/") -> dict:
    return {"cid": cid, "datetime": when, "doc_uri": f"https://{host}{page}", "doc_title": page}


def event(host: str, cid: str | None, when: dt.datetime, name: str = "click") -> dict:
    return {"cid": cid, "datetime": when, "name": name, "doc_uri": f"https://{host}/"}


def store(app, visits=(), events=()) -> None:
    visits, events = list(visits), list(events)
    assert ingest.store(app, visits, events) == (len(visits), len(events))


def rows(app, model) -> list[dict]:
    """Every stored row of a table as a dict of its columns, by id."""
    table = model.__table__
    with app.app_context(), db.engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(sa.select(table).order_by(table.c.id)).mappings()
        ]


def count(app, model, **where) -> int:
    table = model.__table__
    query = sa.select(sa.func.count()).select_from(table)
    for key, value in where.items():
        query = query.where(table.c[key] == value)
    with app.app_context(), db.engine.connect() as connection:
        return connection.scalar(query)


def sessions_of(app, cid: str, site_id: int | None = None) -> list[tuple]:
    """(datetime, session_start, session_seq, session_gap) of a visitor's views, in time order."""
    query = sa.select(
        Visit.datetime, Visit.session_start, Visit.session_seq, Visit.session_gap
    ).where(Visit.cid == cid)
    if site_id is not None:
        query = query.where(Visit.site_id == site_id)
    with app.app_context():
        found = db.session.execute(query.order_by(Visit.datetime, Visit.id)).all()
    return [(when, start, seq, float(gap)) for when, start, seq, gap in found]


def data_versions(app) -> dict[str, int]:
    with app.app_context():
        return dict(db.session.execute(sa.select(Site.host, Site.data_version)).all())


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert fragment in lines[0], result.output
    assert "Traceback" not in result.output


def answers(app, host: str, t0: dt.date, t1: dt.date) -> dict[str, list]:
    """Every built-in report of a site over t0..t1, uncached."""
    with app.app_context():
        with db.engine.connect() as connection:
            site = find_site(connection, host)
        return {
            query.key: run_query(query, site, t0, t1, use_cache=False).data
            for scope in ("public", "private")
            for query in list_queries(scope)
            # these count goals, which the seeds here have none of: tests/test_goal_reports.py
            if query.key not in ("private/goals", "private/funnel")
        }


def two_sites_with_old_and_new_rows(app) -> None:
    """On a.example and b.example: rows 40, 31 and 29 days old and an hour old, and exactly 30."""
    register(app, "a.example")
    register(app, "b.example")
    visits, events = [], []
    for host in ("a.example", "b.example"):
        for n, age in enumerate((40 * DAY, 31 * DAY, 30 * DAY, 29 * DAY, 60 * MINUTE)):
            visits.append(view(host, f"{host}-v{n}", NOW - age))
        for n, age in enumerate((35 * DAY, 2 * DAY)):
            events.append(event(host, f"{host}-v{n}", NOW - age))
    store(app, visits, events)


# ---- prune ------------------------------------------------------------------------------------


def test_prune_deletes_what_is_more_than_n_days_old_on_every_site(pinned, runner):
    two_sites_with_old_and_new_rows(pinned)
    result = runner.invoke(cli, ["prune", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "deleted 4 visits, 2 events older than 2026-02-08T12:00:00Z (30 days)\n"
    )
    cutoff = NOW - 30 * DAY
    for host in ("a.example", "b.example"):
        left = [r for r in rows(pinned, Visit) if r["cid"].startswith(host)]
        # exactly 30 days old is not more than 30 days old: it stays
        assert sorted(r["datetime"] for r in left) == [cutoff, NOW - 29 * DAY, NOW - 60 * MINUTE]
    assert [r["datetime"] for r in rows(pinned, Event)] == [NOW - 2 * DAY] * 2


def test_prune_defaults_to_retention_days(pinned, runner):
    two_sites_with_old_and_new_rows(pinned)
    result = runner.invoke(cli, ["prune"], env={"CRUMBY_RETENTION_DAYS": "2"})
    assert result.exit_code == 0, result.output
    assert result.output.startswith("deleted 8 visits, 2 events older than 2026-03-08T12:00:00Z")
    assert "(2 days)" in result.output
    assert count(pinned, Visit) == 2 and count(pinned, Event) == 2
    # --days wins over the setting
    result = runner.invoke(cli, ["prune", "--days", "1"], env={"CRUMBY_RETENTION_DAYS": "2"})
    assert result.output.startswith("deleted 0 visits, 2 events"), result.output
    assert "(1 day)" in result.output


def test_prune_without_days_or_retention_refuses_and_deletes_nothing(pinned, runner):
    two_sites_with_old_and_new_rows(pinned)
    one_line_error(runner.invoke(cli, ["prune"]), "RETENTION_DAYS")
    one_line_error(
        runner.invoke(cli, ["prune"], env={"CRUMBY_RETENTION_DAYS": "0"}), "RETENTION_DAYS"
    )
    assert count(pinned, Visit) == 10 and count(pinned, Event) == 4


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--days", "0"], "--days"),
        (["--days", "-3"], "--days"),
        (["--days", "many"], "--days"),
        (["--days", "1.5"], "--days"),
        (["--days"], "--days"),
        (["--weeks", "3"], "--weeks"),
        (["--days", "3", "extra"], "extra"),
    ],
)
def test_prune_with_bad_input_says_so_in_one_line_and_deletes_nothing(
    pinned, runner, args, fragment
):
    two_sites_with_old_and_new_rows(pinned)
    one_line_error(runner.invoke(cli, ["prune", *args]), fragment)
    assert count(pinned, Visit) == 10 and count(pinned, Event) == 4


def test_a_retention_days_that_is_no_number_is_refused(pinned, runner, tmp_path):
    two_sites_with_old_and_new_rows(pinned)
    settings = tmp_path / "crumby.cfg"
    settings.write_text("RETENTION_DAYS = 'a month'\n")
    result = runner.invoke(cli, ["prune"], env={"CRUMBY_SETTINGS": str(settings)})
    one_line_error(result, "RETENTION_DAYS")
    assert count(pinned, Visit) == 10


def test_the_first_view_left_of_a_cut_session_becomes_its_entry(pinned, runner):
    site = register(pinned, "a.example")
    cutoff = NOW - 7 * DAY
    store(
        pinned,
        [
            # one session across the cut-off: 10 minutes before, 5 and 15 minutes after
            view("a.example", "cut", cutoff - 10 * MINUTE),
            view("a.example", "cut", cutoff + 5 * MINUTE),
            view("a.example", "cut", cutoff + 15 * MINUTE),
            # a session after it, and another visitor's session just after the cut-off
            view("a.example", "cut", cutoff + DAY),
            view("a.example", "other", cutoff + 20 * MINUTE),
            view("a.example", "other", cutoff + 25 * MINUTE),
        ],
    )
    assert [seq for _, _, seq, _ in sessions_of(pinned, "cut")] == [1, 2, 3, 1]
    other = sessions_of(pinned, "other")

    result = runner.invoke(cli, ["prune", "--days", "7"])
    assert result.output.startswith("deleted 1 visits, 0 events"), result.output
    first = cutoff + 5 * MINUTE
    assert sessions_of(pinned, "cut", site) == [
        (first, first, 1, 0.0),
        (cutoff + 15 * MINUTE, first, 2, 600.0),
        (cutoff + DAY, cutoff + DAY, 1, 0.0),
    ]
    assert sessions_of(pinned, "other") == other


def test_a_session_cut_by_an_interrupted_prune_is_mended_by_the_next_one(pinned):
    site = register(pinned, "a.example")
    cutoff = NOW - 7 * DAY
    store(
        pinned,
        [
            view("a.example", "cut", cutoff - 50 * MINUTE),
            view("a.example", "cut", cutoff - 25 * MINUTE),
            view("a.example", "cut", cutoff + 4 * MINUTE),
        ],
    )
    # a prune that died after its deletions, before re-stitching: the old views are just gone
    with pinned.app_context(), db.engine.begin() as connection:
        connection.execute(sa.delete(Visit).where(Visit.datetime < cutoff))
    assert sessions_of(pinned, "cut")[0][2] == 3
    with pinned.app_context(), db.engine.connect() as connection:
        done = deletion.prune(connection, cutoff)
    assert (done.visits, done.events, done.restitched, done.sites) == (0, 0, 1, {site})
    left = cutoff + 4 * MINUTE
    assert sessions_of(pinned, "cut") == [(left, left, 1, 0.0)]


def test_prune_goes_in_chunks_and_moves_only_the_touched_sites_data_version(pinned):
    register(pinned, "a.example")
    register(pinned, "b.example")
    store(
        pinned,
        [view("a.example", f"v{n}", NOW - 20 * DAY + n * MINUTE * 40) for n in range(7)]
        + [view("b.example", "w", NOW - DAY)],
        [event("a.example", f"v{n}", NOW - 20 * DAY) for n in range(5)],
    )
    before = data_versions(pinned)
    with pinned.app_context(), db.engine.connect() as connection:
        done = deletion.prune(connection, NOW - 10 * DAY, chunk=2)
    assert (done.visits, done.events) == (7, 5)
    assert count(pinned, Visit) == 1 and count(pinned, Event) == 0
    after = data_versions(pinned)
    assert after == {"a.example": before["a.example"] + 1, "b.example": before["b.example"]}


def test_reports_over_the_days_left_are_unchanged_after_prune(pinned, runner):
    seed = rd.build_seed(dt.datetime(2024, 3, 1, 12))
    with pinned.app_context():
        rd.insert(seed)
    clock.pin(pinned, seed.now)
    kept = (dt.date(2024, 2, 29), rd.T1)
    before = answers(pinned, rd.HOST, *kept)
    assert all(before.values())
    cut_day = answers(pinned, rd.HOST, dt.date(2024, 2, 28), dt.date(2024, 2, 28))
    # 11 days before 2024-03-10 12:00 is 2024-02-28 12:00: half of that day goes
    clock.pin(pinned, dt.datetime(2024, 3, 10, 12))
    result = runner.invoke(cli, ["prune", "--days", "11"])
    clock.pin(pinned, seed.now)
    assert result.exit_code == 0, result.output
    assert "older than 2024-02-28T12:00:00Z" in result.output
    assert answers(pinned, rd.HOST, *kept) == before
    assert answers(pinned, rd.HOST, dt.date(2024, 2, 28), dt.date(2024, 2, 28)) != cut_day


# ---- forget -----------------------------------------------------------------------------------


def alice_and_bob(app) -> None:
    """alice on both sites, bob between alice's views on a.example, carol with no visitor id."""
    register(app, "a.example")
    register(app, "b.example")
    t = NOW - 3 * DAY
    store(
        app,
        [
            view("a.example", "alice", t),
            view("a.example", "bob", t + 5 * MINUTE),
            view("a.example", "alice", t + 10 * MINUTE),
            view("a.example", "bob", t + 15 * MINUTE),
            view("b.example", "alice", t + 20 * MINUTE),
            view("b.example", None, t + 25 * MINUTE),
        ],
        [
            event("a.example", "alice", t),
            event("b.example", "alice", t + 20 * MINUTE),
            event("a.example", "bob", t + 15 * MINUTE),
        ],
    )


def test_forget_deletes_the_visitor_on_every_site_and_nothing_else(pinned, runner):
    alice_and_bob(pinned)
    others = [r for r in rows(pinned, Visit) if r["cid"] != "alice"]
    other_events = [r for r in rows(pinned, Event) if r["cid"] != "alice"]
    result = runner.invoke(cli, ["forget", "alice"])
    assert result.exit_code == 0, result.output
    assert result.output == "deleted 3 visits, 2 events of visitor alice\n"
    assert rows(pinned, Visit) == others
    assert rows(pinned, Event) == other_events
    # bob's session around alice's views is still one session of two views
    t = NOW - 3 * DAY
    assert sessions_of(pinned, "bob") == [
        (t + 5 * MINUTE, t + 5 * MINUTE, 1, 0.0),
        (t + 15 * MINUTE, t + 5 * MINUTE, 2, 600.0),
    ]


def test_forget_moves_the_data_version_of_the_sites_it_touched(pinned, runner):
    alice_and_bob(pinned)
    register(pinned, "c.example")
    before = data_versions(pinned)
    runner.invoke(cli, ["forget", "alice"])
    assert data_versions(pinned) == {
        "a.example": before["a.example"] + 1,
        "b.example": before["b.example"] + 1,
        "c.example": before["c.example"],
    }


def test_forget_of_an_unknown_visitor_deletes_nothing(pinned, runner):
    alice_and_bob(pinned)
    before, versions = rows(pinned, Visit), data_versions(pinned)
    result = runner.invoke(cli, ["forget", "nobody"])
    assert result.exit_code == 0
    assert result.output == "deleted 0 visits, 0 events of visitor nobody\n"
    assert rows(pinned, Visit) == before and data_versions(pinned) == versions


@pytest.mark.parametrize("args", [[], [""], ["  "], ["alice", "bob"], ["alice", "--all"]])
def test_forget_with_bad_input_says_so_in_one_line_and_deletes_nothing(pinned, runner, args):
    alice_and_bob(pinned)
    result = runner.invoke(cli, ["forget", *args])
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert count(pinned, Visit) == 6 and count(pinned, Event) == 3


def test_after_forget_the_reports_are_those_of_a_site_the_visitor_never_visited(pinned, runner):
    """b.example holds a.example's seed plus alice's views: once alice goes, they report alike."""
    seed = rd.build_seed(dt.datetime(2024, 3, 1, 12))
    clock.pin(pinned, seed.now)
    times = [
        dt.datetime.combine(rd.T0 + dt.timedelta(days=1 + n % 4), dt.time(9 + n, 7 * n))
        for n in range(8)
    ]
    alice = [rd._visit(rd.random.Random(n), "alice", when) for n, when in enumerate(times)]
    with_alice = rd.Seed(
        visits=[dict(row) for row in seed.visits] + alice,
        events=[dict(row) for row in seed.events]
        + [{"cid": "alice", "datetime": when, "name": "click"} for when in times],
    )
    with pinned.app_context():
        rd.insert(seed, host="a.example")
        rd.insert(with_alice, host="b.example")
    assert answers(pinned, "a.example", rd.T0, rd.T1) != answers(pinned, "b.example", rd.T0, rd.T1)
    result = runner.invoke(cli, ["forget", "alice"])
    assert result.output.startswith("deleted 8 visits, 8 events"), result.output
    assert answers(pinned, "a.example", rd.T0, rd.T1) == answers(pinned, "b.example", rd.T0, rd.T1)


def test_a_cached_public_report_is_not_served_after_forget(pinned, runner, client):
    alice_and_bob(pinned)
    day = (NOW - 3 * DAY).date().isoformat()
    url = f"/api/public/summary?site=a.example&from={day}&to={day}"
    first = client.get(url)
    assert first.status_code == 200 and first.get_json()["data"][0][:2] == [2, 4]
    # deleted behind Crumby's back, alice's views are still counted: the answer is cached
    with pinned.app_context(), db.engine.begin() as connection:
        connection.execute(sa.delete(Visit).where(Visit.cid == "alice"))
    assert client.get(url).get_json()["data"][0][:2] == [2, 4]
    # forget (only alice's events are left to delete) moves the site's data version on
    result = runner.invoke(cli, ["forget", "alice"])
    assert result.output.startswith("deleted 0 visits, 2 events"), result.output
    assert client.get(url).get_json()["data"][0][:2] == [1, 2]


# ---- export -----------------------------------------------------------------------------------


def seeded_for_export(app) -> None:
    register(app, "a.example")
    register(app, "b.example", timezone="America/New_York")
    store(
        app,
        [
            view("a.example", "alice", NOW - 2 * DAY, "/one?x=1"),
            view("a.example", "bob", NOW - DAY, "/two"),
            # 2026-03-09 03:00 UTC is 2026-03-08 23:00 in New York
            view("b.example", "alice", dt.datetime(2026, 3, 9, 3, 0), "/ny-late"),
            view("b.example", "carol", dt.datetime(2026, 3, 9, 12, 0), "/ny-noon"),
            view("b.example", None, dt.datetime(2026, 3, 9, 13, 0), "/ny-anon"),
        ],
        [
            event("a.example", "alice", NOW - 2 * DAY, "signup"),
            event("b.example", "carol", dt.datetime(2026, 3, 9, 12, 1), "buy"),
        ],
    )


def jsonl(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def as_stored(record: dict) -> dict:
    """An exported record's columns with datetimes read back."""
    found = {k: v for k, v in record.items() if k not in ("type", "site")}
    for key in ("datetime", "session_start"):
        if found.get(key) is not None:
            assert found[key].endswith("Z")
            found[key] = dt.datetime.fromisoformat(found[key].removesuffix("Z"))
    return found


def test_export_writes_every_row_once_as_json_lines_with_type_and_site(pinned, runner):
    seeded_for_export(pinned)
    result = runner.invoke(cli, ["export"])
    assert result.exit_code == 0, result.output
    records = jsonl(result.output)
    hosts = {s: h for h, s in _site_ids(pinned).items()}
    visits = [as_stored(r) for r in records if r["type"] == "visit"]
    events = [as_stored(r) for r in records if r["type"] == "event"]
    assert len(records) == len(visits) + len(events) == 7
    stored_visits, stored_events = rows(pinned, Visit), rows(pinned, Event)
    assert visits == stored_visits
    assert events == stored_events
    for record in records:
        assert record["site"] == hosts[record["site_id"]]
    assert set(records[0]) == {"type", "site", *export.columns("visits")}
    assert set(records[-1]) == {"type", "site", *export.columns("events")}


def test_export_narrows_to_a_site_a_visitor_and_the_sites_local_days(pinned, runner):
    seeded_for_export(pinned)

    def exported(*args: str) -> list[tuple]:
        result = runner.invoke(cli, ["export", *args])
        assert result.exit_code == 0, result.output
        return [
            (r["type"], r["site"], r["cid"], r["name"] if r["type"] == "event" else r["doc_path"])
            for r in jsonl(result.output)
        ]

    assert exported("--cid", "alice") == [
        ("visit", "a.example", "alice", "/one"),
        ("visit", "b.example", "alice", "/ny-late"),
        ("event", "a.example", "alice", "signup"),
    ]
    assert exported("--site", "www.b.example", "--table", "events") == [
        ("event", "b.example", "carol", "buy")
    ]
    # New York's 9 March leaves out the view at 23:00 on the 8th, local time
    assert exported("--site", "b.example", "--from", "2026-03-09", "--to", "2026-03-09") == [
        ("visit", "b.example", "carol", "/ny-noon"),
        ("visit", "b.example", None, "/ny-anon"),
        ("event", "b.example", "carol", "buy"),
    ]
    # without --site the days are UTC days: 03:00 UTC on the 9th is in
    assert [row[3] for row in exported("--from", "2026-03-09", "--to", "2026-03-09")] == [
        "/ny-late",
        "/two",
        "/ny-noon",
        "/ny-anon",
        "buy",
    ]
    assert [row[3] for row in exported("--to", "2026-03-08")] == ["/one", "signup"]
    assert exported("--cid", "nobody") == []


def test_export_csv_is_one_table_with_a_header_of_its_columns(pinned, runner):
    seeded_for_export(pinned)
    result = runner.invoke(cli, ["export", "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.output)))
    header = next(csv.reader(io.StringIO(result.output)))
    assert header == [*export.columns("visits"), "site"]
    stored = rows(pinned, Visit)
    assert [int(r["id"]) for r in table] == [r["id"] for r in stored]
    assert [(r["site"], r["cid"], r["doc_uri"]) for r in table] == [
        ("a.example", "alice", "https://a.example/one?x=1"),
        ("b.example", "alice", "https://b.example/ny-late"),
        ("a.example", "bob", "https://a.example/two"),
        ("b.example", "carol", "https://b.example/ny-noon"),
        ("b.example", "", "https://b.example/ny-anon"),
    ]
    assert table[1]["datetime"] == "2026-03-09T03:00:00Z"
    assert table[0]["is_bot"] == "false"
    events = runner.invoke(
        cli, ["export", "--format", "csv", "--table", "events", "--cid", "carol"]
    )
    lines = list(csv.reader(io.StringIO(events.output)))
    assert lines[0] == [*export.columns("events"), "site"]
    assert [(line[3], line[-1]) for line in lines[1:]] == [("carol", "b.example")]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--from", "2026-02-30"], "--from"),
        (["--from", "09.03.2026"], "--from"),
        (["--to", "yesterday"], "--to"),
        (["--from", "2026-03-09", "--to", "2026-03-01"], "after"),
        (["--site", "nowhere.example"], "no such site"),
        (["--format", "xml"], "--format"),
        (["--table", "users"], "--table"),
        (["--bogus"], "--bogus"),
        (["--site"], "--site"),
        (["extra"], "extra"),
    ],
)
def test_export_with_bad_input_says_so_in_one_line(pinned, runner, args, fragment):
    seeded_for_export(pinned)
    result = runner.invoke(cli, ["export", *args])
    one_line_error(result, fragment)
    assert not result.output.startswith("{")


def test_export_reads_with_a_streaming_cursor_in_chunks(pinned, monkeypatch):
    """Rows are fetched a chunk at a time from a server-side cursor, never all at once."""
    seeded_for_export(pinned)
    seen = []
    with pinned.app_context():
        engine = db.engine

        def record(conn, cursor, statement, parameters, context, executemany):
            if "FROM visits" in statement:
                seen.append(dict(context.execution_options))

        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            with engine.connect() as connection:
                streamed = export.rows(connection, "visits", export.Selection(), chunk=2)
                first = next(streamed)
                assert first.cid == "alice"
                rest = list(streamed)
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
    assert len(rest) == 4
    assert len(seen) == 1
    assert seen[0].get("stream_results") is True and seen[0].get("yield_per") == 2


# ---- the console script -----------------------------------------------------------------------


def test_the_console_script_lists_the_commands_and_reports_errors_on_one_line(
    crumby_script, cli_env
):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [crumby_script, *args], env=cli_env, capture_output=True, text=True, timeout=60
        )

    listed = run("-h").stdout
    for name in ("prune", "forget", "export"):
        assert f"  {name} " in listed
    for args in (["export", "--bogus"], ["export", "--site", "nowhere.example"], ["prune"]):
        result = run(*args)
        assert result.returncode != 0, args
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def _site_ids(app) -> dict[str, int]:
    with app.app_context():
        return dict(db.session.execute(sa.select(Site.host, Site.id)).all())
