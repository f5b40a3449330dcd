"""A site owner's first session with the real ``crumby`` script, start to finish."""

from __future__ import annotations

import subprocess


def crumby(script, env, *args, input=None):
    result = subprocess.run(
        [script, *args], env=env, input=input, capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in result.stderr
    return result


def test_owner_sets_up_users_and_tokens_with_the_script(crumby_script, cli_env, tmp_path):
    cfg = tmp_path / "crumby.cfg"
    assert crumby(crumby_script, cli_env, "init", str(cfg)).returncode == 0
    env = dict(cli_env, CRUMBY_SETTINGS=str(cfg))

    shown = crumby(crumby_script, env, "env")
    assert shown.returncode == 0
    secret = dict(line.split(" = ", 1) for line in shown.stdout.splitlines())["SECRET_KEY"]
    assert secret == "'********'"
    assert cfg.read_text().count("SECRET_KEY = '") == 1

    assert crumby(crumby_script, env, "adduser", "ann", "first-pw").returncode == 0
    prompted = crumby(crumby_script, env, "adduser", "ben", input="second-pw\nsecond-pw\n")
    assert prompted.returncode == 0, prompted.stderr
    assert "second-pw" not in prompted.stdout
    assert crumby(crumby_script, env, "users").stdout.splitlines() == ["ann", "ben"]

    token = crumby(crumby_script, env, "token", "ben")
    assert token.returncode == 0
    assert token.stdout.strip().splitlines()[-1].startswith("cmb_")

    assert crumby(crumby_script, env, "deluser", "ann").returncode == 0
    assert crumby(crumby_script, env, "users").stdout.splitlines() == ["ben"]
    again = crumby(crumby_script, env, "deluser", "ann")
    assert again.returncode == 1 and again.stderr.strip().endswith("no such user: 'ann'")
