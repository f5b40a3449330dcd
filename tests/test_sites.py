"""Sites: registering, changing and removing them from the command line (contract 3 and 8)."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
import sqlalchemy as sa

from crumby import clock, ingest
from crumby.cli import cli
from crumby.extensions import db
from crumby.models import Event, Site, Visit
from crumby.sites import SiteError, fold_host, normalize_host

NOW = dt.datetime(2026, 3, 10, 12, 0)


def run_script(script, env, *args):
    return subprocess.run([script, *args], env=env, capture_output=True, text=True, timeout=60)


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert fragment in lines[0], result.output
    assert "Traceback" not in result.output


def _sites(app) -> list[tuple]:
    with app.app_context():
        return [
            tuple(row)
            for row in db.session.execute(
                sa.select(Site.host, Site.timezone, Site.public).order_by(Site.host)
            )
        ]


def _rows(app, model, host: str) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count())
            .select_from(model)
            .join(Site, Site.id == model.site_id)
            .where(Site.host == host)
        )


# ---- a site owner registers sites ------------------------------------------------------------


def test_addsite_registers_a_private_utc_site_and_sites_lists_it(app, runner):
    added = runner.invoke(cli, ["addsite", "Blog.Example"])
    assert added.exit_code == 0, added.output
    assert added.output.strip() == "blog.example UTC private"
    runner.invoke(cli, ["addsite", "shop.example", "--timezone", "Europe/Berlin", "--public"])
    listed = runner.invoke(cli, ["sites"])
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [
        "blog.example UTC private",
        "shop.example Europe/Berlin public",
    ]
    assert _sites(app) == [
        ("blog.example", "UTC", False),
        ("shop.example", "Europe/Berlin", True),
    ]


def test_a_www_host_registers_the_bare_site(app, runner):
    assert runner.invoke(cli, ["addsite", "www.example.org"]).output.startswith("example.org ")
    duplicate = runner.invoke(cli, ["addsite", "example.org"])
    one_line_error(duplicate, "already registered")


@pytest.mark.parametrize(
    "host",
    [
        "https://example.org",
        "example.org:8080",
        "example.org/blog",
        "user@example.org",
        "exa mple.org",
        "bad-.example",
        "",
        "a" * 300 + ".example",
    ],
)
def test_a_host_that_is_not_a_plain_host_name_is_refused(app, runner, host):
    one_line_error(runner.invoke(cli, ["addsite", host]), "host name")
    assert _sites(app) == []


def test_an_unknown_timezone_is_refused(app, runner):
    for zone in ("Mars/Olympus", "../../etc/passwd", "CEST"):
        one_line_error(runner.invoke(cli, ["addsite", "a.example", "--timezone", zone]), "timezone")
    assert _sites(app) == []


def test_site_changes_settings_and_prints_them_in_the_sites_format(app, runner):
    runner.invoke(cli, ["addsite", "a.example"])
    public = runner.invoke(cli, ["site", "a.example", "--public", "--timezone", "Asia/Kolkata"])
    assert public.exit_code == 0, public.output
    assert public.output.strip() == "a.example Asia/Kolkata public"
    private = runner.invoke(cli, ["site", "www.a.example", "--private"])
    assert private.output.strip() == "a.example Asia/Kolkata private"
    shown = runner.invoke(cli, ["site", "a.example"])
    assert shown.output.strip() == "a.example Asia/Kolkata private"


def test_site_refuses_an_unknown_host_and_an_unknown_zone(app, runner):
    one_line_error(runner.invoke(cli, ["site", "nowhere.example", "--public"]), "no such site")
    runner.invoke(cli, ["addsite", "a.example"])
    one_line_error(runner.invoke(cli, ["site", "a.example", "--timezone", "Nope/Nope"]), "timezone")
    assert _sites(app) == [("a.example", "UTC", False)]


def test_a_timezone_change_moves_the_data_version_on(app, runner):
    runner.invoke(cli, ["addsite", "a.example"])
    with app.app_context():
        before = db.session.scalar(sa.select(Site.data_version))
    runner.invoke(cli, ["site", "a.example", "--timezone", "Europe/Berlin"])
    with app.app_context():
        assert db.session.scalar(sa.select(Site.data_version)) == before + 1


# ---- removing a site takes its data, and only with --yes --------------------------------------


def _seed_two_sites(app, runner) -> None:
    runner.invoke(cli, ["addsite", "a.example"])
    runner.invoke(cli, ["addsite", "b.example"])
    clock.pin(app, NOW)
    with app.app_context():
        visits = [
            {"datetime": NOW - dt.timedelta(minutes=n), "cid": f"v{n}", "doc_uri": uri}
            for n, uri in enumerate(["https://a.example/"] * 3 + ["https://www.b.example/x"] * 2)
        ]
        events = [{"datetime": NOW, "cid": "v0", "name": "e", "doc_uri": "https://a.example/"}]
        assert ingest.store(app, visits, events) == (5, 1)


def test_delsite_without_yes_deletes_nothing_and_says_what_it_would(app, runner):
    _seed_two_sites(app, runner)
    result = runner.invoke(cli, ["delsite", "a.example"])
    one_line_error(result, "3 visits and 1 events")
    assert "--yes" in result.output
    assert _rows(app, Visit, "a.example") == 3
    assert [host for host, *_ in _sites(app)] == ["a.example", "b.example"]


def test_delsite_with_yes_removes_the_site_and_only_its_rows(app, runner):
    _seed_two_sites(app, runner)
    result = runner.invoke(cli, ["delsite", "a.example", "--yes"])
    assert result.exit_code == 0, result.output
    assert "3 visits, 1 events" in result.output
    assert [host for host, *_ in _sites(app)] == ["b.example"]
    assert _rows(app, Visit, "b.example") == 2
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Visit)) == 2
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0


def test_delsite_of_an_unknown_host_fails(app, runner):
    one_line_error(runner.invoke(cli, ["delsite", "nowhere.example", "--yes"]), "no such site")


def test_the_console_script_lists_the_site_commands(crumby_script, cli_env):
    result = run_script(crumby_script, cli_env, "-h")
    for name in ("sites", "addsite", "site", "delsite"):
        assert f"  {name} " in result.stdout


def test_the_console_script_reports_a_bad_host_on_one_line(crumby_script, cli_env):
    result = run_script(crumby_script, cli_env, "addsite", "http://x.example/")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


# ---- the host rules themselves ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("Example.ORG", "example.org"),
        ("www.example.org", "example.org"),
        ("example.org.", "example.org"),
        ("www.com", "www.com"),  # a name whose only label is www stays as it is
        ("blog.example.org", "blog.example.org"),
        ("localhost", "localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_normalize_host(raw, host):
    assert normalize_host(raw) == host


def test_fold_host_matches_what_pages_send():
    assert fold_host("WWW.Example.org") == "example.org"
    with pytest.raises(SiteError):
        normalize_host("example.org:443")


def test_find_site_answers_none_for_text_no_host_can_hold(app):
    from crumby.sites import find_site

    with app.app_context(), db.engine.connect() as connection:
        for text in ("\x00", "a\x00.example", "tab\there.example", "x" * 300, ""):
            assert find_site(connection, text) is None
