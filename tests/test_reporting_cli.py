"""``crumby query`` and ``crumby check`` as a query author uses them."""

from __future__ import annotations

import csv
import io
import json

from crumby.cli import cli
from tests import report_data as rd

RANGE = ["--from", rd.T0.isoformat(), "--to", rd.T1.isoformat()]


def _seed(app):
    with app.app_context():
        seed = rd.build_seed(rd.dt.datetime(2024, 3, 1, 12))
        rd.insert(seed)
    return seed


def test_query_prints_a_table(app, runner):
    seed = _seed(app)
    result = runner.invoke(cli, ["query", "visits", *RANGE])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["date", "users", "views"]
    assert len(lines) == 2 + len(rd.days())
    first = lines[2].split()
    assert first[0] == rd.T0.isoformat()
    assert int(first[2]) == sum(
        1 for r in rd.in_range(seed.visits) if r["datetime"].date() == rd.T0
    )


def test_query_json_and_csv_agree(app, runner):
    _seed(app)
    as_json = json.loads(
        runner.invoke(cli, ["query", "browsers", *RANGE, "--format", "json"]).output
    )
    as_csv = runner.invoke(cli, ["query", "browsers", *RANGE, "--format", "csv"]).output
    rows = list(csv.reader(io.StringIO(as_csv)))
    assert rows[0] == as_json["columns"] == ["browser", "visitors"]
    assert rows[1:] == [[str(v) for v in row] for row in as_json["data"]]


def test_query_private_and_days(app, runner):
    _seed(app)
    result = runner.invoke(
        cli,
        [
            "query",
            "events",
            "--private",
            "--days",
            "7",
            "--to",
            rd.T1.isoformat(),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert (body["t0"], body["t1"]) == (rd.T0.isoformat(), rd.T1.isoformat())
    assert "signup" in {row[0] for row in body["data"]}
    public = runner.invoke(cli, ["query", "events"])
    assert public.exit_code == 1 and "no such public query: events" in public.output


def test_query_errors_are_one_line(app, runner):
    _seed(app)  # a site exists: each error below is about the arguments, not a missing site
    for args, words in (
        (["query", "visits", "--from", "2024-02-30", "--to", "2024-03-01"], "--from"),
        (["query", "visits", "--days", "many"], "--days"),
        (["query", "visits", "--from", "2024-03-01"], "--to"),
        (["query", "nope"], "no such public query: nope"),
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, args
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert words in result.output, (args, result.output)


def test_check_passes_for_the_built_ins_and_names_broken_files(app, runner, tmp_path):
    ok = runner.invoke(cli, ["check"])
    assert ok.exit_code == 0, ok.output
    assert "public/visits" in ok.output and "private/events" in ok.output
    folder = tmp_path / "q"
    (folder / "public").mkdir(parents=True)
    (folder / "public" / "typo.sql").write_text("SELEC 1\n")
    (folder / "public" / "fine.sql").write_text("SELECT 1 AS one\n")
    broken = runner.invoke(cli, ["check"], env={"CRUMBY_QUERY_FOLDER": str(folder)})
    assert broken.exit_code == 1
    assert "FAIL query public/typo failed" in broken.output
    assert "ok   public/fine" in broken.output
    assert "1 broken query" in broken.output


def test_the_installed_script_runs_a_report(app, crumby_script, cli_env):
    import subprocess

    _seed(app)
    done = subprocess.run(
        [crumby_script, "query", "visits", *RANGE, "--format", "csv"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["date", "users", "views"]
    assert [r[0] for r in rows[1:]] == [d.isoformat() for d in rd.days()]
    bad = subprocess.run(
        [crumby_script, "query", "visits", "--days", "-3"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_query_names_the_site_when_there_are_several(app, runner):
    with app.app_context():
        seeds = rd.insert_zoned()
    berlin = seeds["berlin.example"]
    ambiguous = runner.invoke(cli, ["query", "visits", *RANGE])
    assert ambiguous.exit_code == 1
    assert len(ambiguous.output.strip().splitlines()) == 1 and "--site" in ambiguous.output
    unknown = runner.invoke(cli, ["query", "visits", "--site", "nope.example", *RANGE])
    assert unknown.exit_code == 1 and "nope.example" in unknown.output
    first, last = rd.AUTUMN
    span = ["--from", first.isoformat(), "--to", last.isoformat()]
    result = runner.invoke(
        cli, ["query", "visits", "--site", "berlin.example", *span, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["site"] == "berlin.example"
    # the site's local days, the 25-hour 2024-10-27 among them
    assert body["data"] == rd.expect("visits", berlin, first, last, rd.BERLIN)
    events = runner.invoke(
        cli, ["query", "events", "--private", "--site", "kolkata.example", *span, "--format", "csv"]
    )
    assert events.exit_code == 0, events.output
    names = {row[0] for row in list(csv.reader(io.StringIO(events.output)))[1:]}
    assert names and all(name.startswith("in-") for name in names)


def test_check_runs_every_query_for_a_site_in_another_zone(app, runner):
    with app.app_context():
        rd.insert_zoned()
    ok = runner.invoke(cli, ["check"])
    assert ok.exit_code == 0, ok.output
    assert "FAIL" not in ok.output and "ok   public/sessions" in ok.output


def test_query_takes_the_series_interval_and_refuses_a_bad_one(app, runner):
    seed = _seed(app)
    weeks = runner.invoke(
        cli, ["query", "visits", *RANGE, "--param", "interval=week", "--format", "json"]
    )
    assert weeks.exit_code == 0, weeks.output
    answer = json.loads(weeks.output)
    assert answer["columns"] == ["week", "users", "views"]
    rows = rd.in_range(seed.visits)
    assert sum(r[2] for r in answer["data"]) == sum(1 for r in rows if not r["is_bot"])
    fortnight = ["--from", rd.T0.isoformat(), "--to", "2024-03-10"]
    hours = runner.invoke(cli, ["query", "visits", *fortnight, "--param", "interval=hour"])
    assert hours.exit_code != 0
    assert "interval=hour" in hours.output and "Traceback" not in hours.output
    assert len(hours.output.strip().splitlines()) == 1
