"""The crumby command line, through click's runner and the real console script."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash

from crumby.cli import cli
from crumby.extensions import db
from crumby.models import ApiToken, User

COMMANDS = (
    "addsite",
    "adduser",
    "delsite",
    "deluser",
    "demo",
    "env",
    "geoip",
    "init",
    "run",
    "site",
    "sites",
    "token",
    "users",
)


def run_script(script, env, *args, input=None):
    return subprocess.run(
        [script, *args], env=env, input=input, capture_output=True, text=True, timeout=60
    )


def assert_one_line_error(result_stderr: str, fragment: str) -> None:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert fragment in lines[0]
    assert "Traceback" not in result_stderr


def test_help_lists_every_command(crumby_script):
    for flag in ("-h", "--help"):
        result = run_script(crumby_script, os.environ.copy(), flag)
        assert result.returncode == 0
        for name in COMMANDS:
            assert f"  {name} " in result.stdout


def test_init_writes_a_private_config_with_a_fresh_secret(tmp_path, runner):
    path = tmp_path / "crumby.cfg"
    first = runner.invoke(cli, ["init", str(path)])
    assert first.exit_code == 0, first.output
    assert f"CRUMBY_SETTINGS={path}" in first.output
    namespace: dict = {}
    exec(path.read_text(), namespace)
    secret = namespace["SECRET_KEY"]
    assert isinstance(secret, str) and len(secret) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # refuses to overwrite, then overwrites with --force and a new secret
    again = runner.invoke(cli, ["init", str(path)])
    assert again.exit_code == 1 and "already exists" in again.output
    forced = runner.invoke(cli, ["init", str(path), "--force"])
    assert forced.exit_code == 0
    namespace2: dict = {}
    exec(path.read_text(), namespace2)
    assert namespace2["SECRET_KEY"] != secret


def test_init_defaults_to_crumby_cfg_in_the_current_folder(tmp_path, crumby_script, cli_env):
    result = subprocess.run(
        [crumby_script, "init"],
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert (tmp_path / "crumby.cfg").exists()
    refused = subprocess.run(
        [crumby_script, "init"],
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert_one_line_error(refused.stderr, "already exists")


def test_the_config_init_writes_is_used_by_every_command(tmp_path, crumby_script, cli_env):
    path = tmp_path / "site.cfg"
    assert run_script(crumby_script, cli_env, "init", str(path)).returncode == 0
    env = dict(cli_env, CRUMBY_SETTINGS=str(path))
    env.pop("CRUMBY_SQLALCHEMY_DATABASE_URI")
    shown = run_script(crumby_script, env, "env")
    assert shown.returncode == 0
    home = cli_env["HOME"]
    assert f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{home}/crumby.db'" in shown.stdout
    assert run_script(crumby_script, env, "adduser", "ann", "pw").returncode == 0
    assert os.path.exists(os.path.join(home, "crumby.db"))


def test_env_prints_every_key_with_secrets_masked(runner, tmp_path):
    path = tmp_path / "c.cfg"
    path.write_text("SECRET_KEY = 'very-secret-value'\nDOMAIN = 'stats.example.org'\n")
    result = runner.invoke(
        cli,
        ["env"],
        env={
            "CRUMBY_SETTINGS": str(path),
            "CRUMBY_SQLALCHEMY_DATABASE_URI": "mysql+pymysql://crumby:db-password@db.local/crumby",
        },
    )
    assert result.exit_code == 0, result.output
    lines = dict(line.split(" = ", 1) for line in result.output.splitlines())
    assert lines["DOMAIN"] == "'stats.example.org'"
    assert "very-secret-value" not in result.output
    assert "db-password" not in result.output
    assert lines["SECRET_KEY"] == "'********'"
    assert lines["SQLALCHEMY_DATABASE_URI"] == "'mysql+pymysql://crumby:***@db.local/crumby'"
    for key in ("GEOIP2_DATABASE_NAME", "PROXY_COUNT", "CROSSDOMAIN_ORIGIN", "QUERY_FOLDER"):
        assert key in lines


def test_adduser_users_deluser_round_trip(runner, app):
    assert runner.invoke(cli, ["adduser", "alice", "s3cret"]).exit_code == 0
    assert runner.invoke(cli, ["adduser", "bob", "pw"]).exit_code == 0
    listed = runner.invoke(cli, ["users"])
    assert listed.output.splitlines() == ["alice", "bob"]
    with app.app_context():
        stored = db.session.scalar(sa.select(User.password).where(User.username == "alice"))
    assert stored != "s3cret" and "s3cret" not in stored
    assert check_password_hash(stored, "s3cret")
    assert runner.invoke(cli, ["deluser", "alice"]).exit_code == 0
    assert runner.invoke(cli, ["users"]).output.splitlines() == ["bob"]


def test_adduser_prompts_twice_without_echo(runner, app):
    result = runner.invoke(cli, ["adduser", "carol"], input="pw1\npw1\n")
    assert result.exit_code == 0, result.output
    assert "pw1" not in result.output
    assert result.output.count("Password") == 1 and "Repeat" in result.output
    with app.app_context():
        stored = db.session.scalar(sa.select(User.password).where(User.username == "carol"))
    assert check_password_hash(stored, "pw1")


def test_adduser_prompt_mismatch_asks_again(runner, app):
    result = runner.invoke(cli, ["adduser", "dave"], input="one\ntwo\nthree\nthree\n")
    assert result.exit_code == 0
    assert "do not match" in result.output
    with app.app_context():
        stored = db.session.scalar(sa.select(User.password).where(User.username == "dave"))
    assert check_password_hash(stored, "three")


@pytest.mark.parametrize(
    ("args", "setup", "message"),
    [
        (["adduser", "alice", "pw"], ["adduser", "alice", "x"], "already exists"),
        (["adduser", "erin", ""], None, "password must not be empty"),
        (["adduser", "with space", "pw"], None, "spaces"),
        (["deluser", "nobody"], None, "no such user"),
        (["token", "nobody"], None, "no such user"),
    ],
)
def test_bad_user_input_is_one_line_and_nonzero(crumby_script, cli_env, args, setup, message):
    if setup:
        assert run_script(crumby_script, cli_env, *setup).returncode == 0
    result = run_script(crumby_script, cli_env, *args)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, message)


def test_empty_prompted_password_is_refused(runner, app):
    result = runner.invoke(cli, ["adduser", "frank"], input="\n\n")
    assert result.exit_code == 1
    assert "password must not be empty" in result.output
    assert runner.invoke(cli, ["users"]).output == ""


def test_deluser_removes_the_users_tokens(runner, app):
    runner.invoke(cli, ["adduser", "gina", "pw"])
    runner.invoke(cli, ["token", "gina"])
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 1
    assert runner.invoke(cli, ["deluser", "gina"]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_token_is_printed_last_and_stored_only_hashed(crumby_script, cli_env, app, client):
    assert run_script(crumby_script, cli_env, "adduser", "hal", "pw").returncode == 0
    result = run_script(crumby_script, cli_env, "token", "hal")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert len(token) >= 40 and " " not in token
    second = run_script(crumby_script, cli_env, "token", "hal").stdout.strip().splitlines()[-1]
    assert second != token
    with app.app_context():
        hashes = list(db.session.scalars(sa.select(ApiToken.token_hash)))
        from crumby.accounts import hash_token, user_for_token

        assert token not in hashes and hash_token(token) in hashes
        assert user_for_token(token).username == "hal"
        assert user_for_token(token + "x") is None


@pytest.mark.parametrize("command", ["users", "env", "adduser x y", "init /dev/null/x"])
def test_unreadable_settings_file_is_one_line(crumby_script, cli_env, tmp_path, command):
    env = dict(cli_env, CRUMBY_SETTINGS=str(tmp_path / "missing.cfg"))
    if command.startswith("init"):
        # init does not need settings; it fails on the path it cannot write instead
        result = run_script(crumby_script, env, *command.split())
        assert result.returncode == 1
        assert_one_line_error(result.stderr, "/dev/null/x")
        return
    result = run_script(crumby_script, env, *command.split())
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "missing.cfg")


def test_settings_file_that_cannot_be_parsed_is_one_line(crumby_script, cli_env, tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text("DOMAIN = 'unterminated\n")
    result = run_script(crumby_script, dict(cli_env, CRUMBY_SETTINGS=str(path)), "users")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "bad.cfg line 1")


def test_unreachable_database_is_one_line(crumby_script, cli_env):
    env = dict(cli_env, CRUMBY_SQLALCHEMY_DATABASE_URI="sqlite:////nonexistent-dir/x/crumby.db")
    result = run_script(crumby_script, env, "users")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "database")


def test_run_serves_the_app(crumby_script, cli_env):
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [crumby_script, "run", "--port", str(port)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    body = response.read().decode()
                    assert response.status == 200
                    assert "Crumby" in body
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_run_rejects_a_bad_port(crumby_script, cli_env):
    result = run_script(crumby_script, cli_env, "run", "--port", "70000")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
