"""Goals and funnels from the command line, their tables and their migration (contract 3 and 9)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from crumby import create_app
from crumby.cli import cli
from crumby.database import _goals_and_funnels, ensure_schema
from crumby.extensions import db
from crumby.goals import add_funnel, add_goal, list_funnels, list_goals
from crumby.models import Funnel, FunnelStep, Goal
from crumby.sites import add_site, find_site
from tests import upgrades


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert fragment in lines[0], result.output
    assert "Traceback" not in result.output


@pytest.fixture
def shop(runner):
    assert runner.invoke(cli, ["addsite", "shop.example"]).exit_code == 0
    return "shop.example"


def _ok(runner, *args) -> list[str]:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_help_lists_goal_and_funnel(runner):
    listed = runner.invoke(cli, ["-h"]).output
    assert "goal " in listed and "funnel " in listed
    for group in ("goal", "funnel"):
        sub = runner.invoke(cli, [group, "-h"]).output
        assert all(name in sub for name in ("add", "list", "del")), sub


def test_goals_are_added_listed_and_deleted(runner, shop):
    assert _ok(runner, "goal", "add", shop, "Signed up", "--event", "signup") == [
        "Signed up\tevent\tsignup"
    ]
    assert _ok(runner, "goal", "add", "WWW.Shop.Example", "Pricing", "--page", "/pricing") == [
        "Pricing\tpage\t/pricing"
    ]
    assert _ok(runner, "goal", "list", shop) == [
        "Pricing\tpage\t/pricing",
        "Signed up\tevent\tsignup",
    ]
    assert _ok(runner, "goal", "del", shop, "Pricing") == ["deleted goal Pricing"]
    assert _ok(runner, "goal", "list", shop) == ["Signed up\tevent\tsignup"]


def test_funnels_are_added_listed_and_deleted(runner, shop):
    for name, kind, target in (("A", "--page", "/a"), ("B", "--event", "b"), ("C", "--page", "/c")):
        _ok(runner, "goal", "add", shop, name, kind, target)
    assert _ok(runner, "funnel", "add", shop, "abc", "A", "B", "C") == ["abc\tA > B > C"]
    assert _ok(runner, "funnel", "add", shop, "again", "A", "B", "A") == ["again\tA > B > A"]
    assert _ok(runner, "funnel", "add", shop, "eight", *"ABCABCAB") == [
        "eight\tA > B > C > A > B > C > A > B"
    ]
    assert _ok(runner, "funnel", "list", shop) == [
        "abc\tA > B > C",
        "again\tA > B > A",
        "eight\tA > B > C > A > B > C > A > B",
    ]
    assert _ok(runner, "funnel", "del", shop, "again") == ["deleted funnel again"]
    assert _ok(runner, "funnel", "list", shop) == [
        "abc\tA > B > C",
        "eight\tA > B > C > A > B > C > A > B",
    ]
    # the goals stay
    assert len(_ok(runner, "goal", "list", shop)) == 3


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["goal", "add", "nowhere.example", "G", "--event", "e"], "no such site"),
        (["goal", "add", "shop.example", "G"], "exactly one of --event"),
        (["goal", "add", "shop.example", "G", "--event", "e", "--page", "/p"], "exactly one of"),
        (["goal", "add", "shop.example", "Dup", "--event", "other"], "already has a goal"),
        (["goal", "add", "shop.example", "", "--event", "e"], "must not be empty"),
        (["goal", "add", "shop.example", "   ", "--event", "e"], "must not be empty"),
        (["goal", "add", "shop.example", "x" * 101, "--event", "e"], "too long"),
        (["goal", "add", "shop.example", "G", "--event", "e" * 256], "too long"),
        (["goal", "add", "shop.example", "G", "--event", ""], "must not be empty"),
        (["goal", "add", "shop.example", "G", "--page", "/" + "p" * 2048], "too long"),
        (["goal", "add", "shop.example", "G", "--page", "pricing"], "starting with /"),
        (["goal", "add", "shop.example", "G", "--page", "/p?x=1"], "without query string"),
        (["goal", "add", "shop.example", "G\x00", "--event", "e"], "control characters"),
        (["goal", "add", "shop.example", "G", "--event", "a\nb"], "control characters"),
        (["goal", "list", "nowhere.example"], "no such site"),
        (["goal", "del", "nowhere.example", "Dup"], "no such site"),
        (["goal", "del", "shop.example", "Nope"], "no goal named"),
        (["goal", "del", "shop.example", "Dup"], "step of the funnel 'uses-dup'"),
        (["funnel", "add", "nowhere.example", "F", "Dup", "Other"], "no such site"),
        (["funnel", "add", "shop.example", "F"], "2 to 8 steps, got 0"),
        (["funnel", "add", "shop.example", "F", "Dup"], "2 to 8 steps, got 1"),
        (["funnel", "add", "shop.example", "F", *["Dup", "Other"] * 4, "Dup"], "got 9"),
        (["funnel", "add", "shop.example", "F", "Dup", "Nope"], "no goal named 'Nope'"),
        (["funnel", "add", "shop.example", "uses-dup", "Dup", "Other"], "already has a funnel"),
        (["funnel", "add", "shop.example", "x" * 101, "Dup", "Other"], "too long"),
        (["funnel", "add", "shop.example", "", "Dup", "Other"], "must not be empty"),
        (["funnel", "list", "nowhere.example"], "no such site"),
        (["funnel", "del", "shop.example", "nope"], "no funnel named"),
        (["funnel", "del", "nowhere.example", "uses-dup"], "no such site"),
    ],
)
def test_every_bad_input_is_one_line_and_a_non_zero_exit(app, runner, shop, args, fragment):
    _ok(runner, "goal", "add", shop, "Dup", "--event", "dup")
    _ok(runner, "goal", "add", shop, "Other", "--page", "/other")
    _ok(runner, "funnel", "add", shop, "uses-dup", "Dup", "Other")
    before = _tables(app)
    one_line_error(runner.invoke(cli, args), fragment)
    assert _tables(app) == before, "a refused command changes nothing"


def _tables(app) -> tuple:
    with app.app_context():
        return tuple(
            sorted(tuple(map(str, row)) for row in db.session.execute(sa.select(model)).all())
            for model in (Goal, Funnel, FunnelStep)
        )


def test_the_console_script_exits_non_zero_on_bad_input(app, cli_env, crumby_script, shop):
    import subprocess

    done = subprocess.run(
        [crumby_script, "funnel", "add", shop, "F", "only-one"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "2 to 8" in done.stderr


def test_deleting_a_site_deletes_its_goals_and_funnels_only(app, runner, shop):
    _ok(runner, "addsite", "other.example")
    for host in (shop, "other.example"):
        _ok(runner, "goal", "add", host, "A", "--page", "/a")
        _ok(runner, "goal", "add", host, "B", "--event", "b")
        _ok(runner, "funnel", "add", host, "ab", "A", "B")
    _ok(runner, "delsite", shop, "--yes")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Goal)) == 2
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Funnel)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(FunnelStep)) == 2
    # the host registered again starts without goals
    _ok(runner, "addsite", shop)
    assert _ok(runner, "goal", "list", shop) == []
    assert _ok(runner, "funnel", "list", shop) == []
    assert _ok(runner, "funnel", "list", "other.example") == ["ab\tA > B"]


def test_a_goal_or_funnel_change_moves_the_data_version_on(app, runner, shop):
    def version():
        with app.app_context(), db.engine.connect() as connection:
            return find_site(connection, shop).data_version

    start = version()
    _ok(runner, "goal", "add", shop, "A", "--page", "/a")
    _ok(runner, "goal", "add", shop, "B", "--page", "/b")
    _ok(runner, "funnel", "add", shop, "ab", "A", "B")
    _ok(runner, "funnel", "del", shop, "ab")
    _ok(runner, "goal", "del", shop, "B")
    assert version() == start + 5


def test_a_database_from_before_goals_is_upgraded(other_database_url, tmp_path):
    settings = upgrades.config(other_database_url, tmp_path)
    old = create_app(settings)
    ensure_schema(old)
    with old.app_context():
        with db.engine.begin() as connection:
            add_site(connection, "shop.example")
            for table in ("funnel_steps", "funnels", "goals"):
                connection.exec_driver_sql(f"DROP TABLE {table}")
            upgrades.rewind(connection, _goals_and_funnels)
        assert not {"goals", "funnels", "funnel_steps"} & set(
            sa.inspect(db.engine).get_table_names()
        )
    upgrades.close(old)

    upgraded = upgrades.upgraded(settings)
    with upgraded.app_context():
        with db.engine.begin() as connection:
            _goals_and_funnels(connection)  # again: a branch merge may replay it
            add_goal(connection, "shop.example", "A", page="/a")
            add_goal(connection, "shop.example", "B", event="b")
            add_funnel(connection, "shop.example", "ab", ["A", "B"])
        with db.engine.connect() as connection:
            site = find_site(connection, "shop.example")
            assert [g.name for g in list_goals(connection, site)] == ["A", "B"]
            assert [f.describe() for f in list_funnels(connection, site)] == ["ab\tA > B"]
        db.session.remove()
        db.engine.dispose()


def test_query_and_check_run_the_goal_reports(runner, shop):
    _ok(runner, "goal", "add", shop, "A", "--page", "/a")
    _ok(runner, "goal", "add", shop, "B", "--event", "b")
    _ok(runner, "funnel", "add", shop, "ab", "A", "B")
    shown = _ok(runner, "query", "funnel", "--private", "--param", "funnel=ab", "--days", "7")
    assert shown[0].split() == ["step", "goal", "visitors", "conversion_rate", "dropoff"]
    rows = [line.split() for line in shown[2:]]
    assert [(r[0], r[1]) for r in rows] == [("1", "A"), ("2", "B")]
    assert all(float(v) == 0 for r in rows for v in r[2:])  # PostgreSQL prints the rate as 0.0
    goals = _ok(runner, "query", "goals", "--private", "--format", "csv")
    assert goals[0] == "goal,visitors,conversions,conversion_rate"
    assert [line.split(",")[:3] for line in goals[1:]] == [["A", "0", "0"], ["B", "0", "0"]]
    one_line_error(runner.invoke(cli, ["query", "funnel", "--private"]), "--param funnel=NAME")
    one_line_error(
        runner.invoke(cli, ["query", "funnel", "--private", "--param", "funnel=nope"]),
        "no funnel named",
    )
    one_line_error(
        runner.invoke(cli, ["query", "funnel", "--private", "--param", "x"]), "NAME=VALUE"
    )
    checked = runner.invoke(cli, ["check"])
    assert checked.exit_code == 0, checked.output
    assert "ok   private/funnel (5 columns, 2 rows)" in checked.output
    assert "ok   private/goals (4 columns, 2 rows)" in checked.output


def test_the_demo_has_goals_and_a_funnel_with_numbers(app):
    from crumby import clock, demo
    from crumby.reporting import get_query, parameters, run_query

    clock.pin(app, dt.datetime(2026, 3, 10, 12, 0))
    with app.app_context():
        demo.register_site()
        demo.register_goals()
        demo.register_goals()  # once only
        demo.generate(days=7, sessions_per_day=40, seed=3)
        with db.engine.connect() as connection:
            site = find_site(connection, demo.SITE_HOST)
            assert len(list_goals(connection, site)) == len(demo.DEMO_GOALS)
        query = get_query("private", "funnel")
        params = parameters.resolve(query, site, {"funnel": demo.DEMO_FUNNEL[0]})
        t1 = dt.date(2026, 3, 10)
        funnel = run_query(query, site, t1 - dt.timedelta(days=6), t1, params=params).data
        goals = run_query(get_query("private", "goals"), site, t1 - dt.timedelta(days=6), t1).data
    assert [row[1] for row in funnel] == demo.DEMO_FUNNEL[1]
    assert funnel[0][2] > funnel[1][2] > funnel[2][2] > 0
    assert all(row[1] > 0 for row in goals)
