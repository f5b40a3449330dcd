"""Configuration: defaults < settings file < CRUMBY_* environment < create_app(config)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crumby import create_app, settings


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_apply_without_a_settings_file():
    values = settings.resolve(environ={})
    home = os.path.expanduser("~")
    assert values["DOMAIN"] == "localhost:5000"
    assert values["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{home}/crumby.db"
    assert values["GEOIP2_DATABASE_NAME"] == f"{home}/GeoLite2-City.mmdb"
    assert values["SECRET_KEY"] is None
    assert values["PROXY_COUNT"] == 0
    assert values["CROSSDOMAIN_ORIGIN"] == "*"
    assert values["QUERY_FOLDER"] is None
    assert values["DEBUG"] is False


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path):
    path = write(tmp_path / "c.cfg", "DOMAIN = 'file.example'\nPROXY_COUNT = 1\nDEBUG = True\n")
    from_file = settings.resolve(environ={"CRUMBY_SETTINGS": path})
    assert (from_file["DOMAIN"], from_file["PROXY_COUNT"], from_file["DEBUG"]) == (
        "file.example",
        1,
        True,
    )
    env = {
        "CRUMBY_SETTINGS": path,
        "CRUMBY_DOMAIN": "env.example",
        "CRUMBY_PROXY_COUNT": "2",
        "CRUMBY_DEBUG": "false",
    }
    from_env = settings.resolve(environ=env)
    assert (from_env["DOMAIN"], from_env["PROXY_COUNT"], from_env["DEBUG"]) == (
        "env.example",
        2,
        False,
    )
    assert settings.resolve({"DOMAIN": "arg.example"}, environ=env)["DOMAIN"] == "arg.example"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://a.example", "https://a.example"),
        ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
        ('["https://a.example"]', ["https://a.example"]),
    ],
)
def test_crossdomain_origin_from_environment_is_a_string_or_a_list(raw, expected):
    assert settings.resolve(environ={"CRUMBY_CROSSDOMAIN_ORIGIN": raw})["CROSSDOMAIN_ORIGIN"] == (
        expected
    )


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("CRUMBY_PROXY_COUNT", "two", "whole number"),
        ("CRUMBY_DEBUG", "maybe", "true or false"),
        ("CRUMBY_PROXY_COUNT", "-1", "PROXY_COUNT"),
        ("CRUMBY_SQLALCHEMY_DATABASE_URI", "not a url", "not a database URL"),
    ],
)
def test_unparsable_environment_values_are_one_line_errors(name, raw, message):
    with pytest.raises(settings.ConfigError, match=message) as info:
        settings.resolve(environ={name: raw})
    assert "\n" not in str(info.value)


def test_tilde_is_expanded_in_paths_from_the_file(tmp_path):
    path = write(
        tmp_path / "c.cfg",
        "SQLALCHEMY_DATABASE_URI = 'sqlite:///~/x.db'\n"
        "GEOIP2_DATABASE_NAME = '~/geo/city.mmdb'\nQUERY_FOLDER = '~/queries'\n",
    )
    values = settings.resolve(environ={"CRUMBY_SETTINGS": path})
    home = os.path.expanduser("~")
    assert values["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{home}/x.db"
    assert values["GEOIP2_DATABASE_NAME"] == f"{home}/geo/city.mmdb"
    assert values["QUERY_FOLDER"] == f"{home}/queries"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read settings file"),
        ("DOMAIN = (\n", "line 1"),
        ("DOMAIN = undefined_name\n", "NameError"),
    ],
)
def test_missing_or_broken_settings_file_names_the_file(tmp_path, content, message):
    path = tmp_path / "broken.cfg"
    if content is not None:
        path.write_text(content)
    with pytest.raises(settings.ConfigError, match=message) as info:
        settings.resolve(environ={"CRUMBY_SETTINGS": str(path)})
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_masking_hides_secret_key_and_database_passwords():
    assert settings.mask("SECRET_KEY", "hunter2") == settings.MASK
    masked = settings.mask("SQLALCHEMY_DATABASE_URI", "mysql+pymysql://crumby:hunter2@db/crumby")
    assert "hunter2" not in masked
    assert masked.startswith("mysql+pymysql://crumby:") and masked.endswith("@db/crumby")
    assert settings.mask("DOMAIN", "example.com") == "example.com"


def test_create_app_reads_the_settings_file_from_the_environment(tmp_path, monkeypatch):
    db_path = tmp_path / "site.db"
    path = write(
        tmp_path / "c.cfg",
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{db_path}'\nDOMAIN = 'stats.example.org'\n",
    )
    monkeypatch.setenv("CRUMBY_SETTINGS", path)
    app = create_app()
    assert app.config["DOMAIN"] == "stats.example.org"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{db_path}"


def test_example_config_is_what_crumby_init_writes():
    """crumby.cfg.example stays in step with the documented defaults."""
    example = Path(__file__).parents[1] / "crumby.cfg.example"
    expected = settings.render_config_file(None)
    assert example.read_text(encoding="utf-8") == expected
