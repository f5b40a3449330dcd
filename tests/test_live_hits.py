"""Through the real server (gunicorn as the systemd unit runs it), a hit shows up in the
public reports within 10 seconds: the summary, the visits per day and "right now".

Public answers that reach today may be cached for a few seconds (and each gunicorn
worker has its own cache); the test asks for every report once before the hit, so
stale answers are in the caches when it polls after the hit.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import sqlalchemy as sa

from crumby.models import Visit
from tests.test_deployment import free_port, stop, unit_command

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
VISIBLE_WITHIN = 10.0


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback only
        assert response.status == 200
        return json.loads(response.read())


def column(answer: dict, name: str, row: int = 0):
    return answer["data"][row][answer["columns"].index(name)]


def send_hit(base: str) -> int:
    body = (
        b"cid=live-visitor&dl=https%3A%2F%2Fshop.example%2Flive%3Fq%3D1&dt=Live%20page"
        b"&de=UTF-8&ul=en-GB&sr=1920x1080"
    )
    request = urllib.request.Request(
        base + "/visit",
        data=body,
        method="POST",
        headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": CHROME},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        return response.status


def stored_day(database_url: str):
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(Visit.datetime)).scalar_one()
    finally:
        engine.dispose()


def test_a_hit_is_in_summary_visits_and_realtime_within_ten_seconds(
    database_url, app, crumby_script, cli_env, tmp_path
):
    added = subprocess.run(
        [crumby_script, "addsite", "shop.example", "--public"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    port = free_port()
    argv, _ = unit_command(port)  # the shipped unit's workers and threads
    env = dict(cli_env, CRUMBY_GEOIP2_DATABASE_NAME=str(tmp_path / "no.mmdb"))
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    api = base + "/api/public/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                before = {name: get_json(api + name + "?days=1") for name in ("summary", "visits")}
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.2)
        # each worker answers each report once before the hit: stale copies are cached
        for _ in range(4):
            before["realtime"] = get_json(api + "realtime")
            get_json(api + "summary?days=1")
            get_json(api + "visits?days=1")
        assert column(before["summary"], "views") == 0
        assert column(before["visits"], "views") == 0
        assert column(before["realtime"], "views") == 0

        assert send_hit(base) == 204
        answered = time.monotonic()
        # the stored row's own day (the site's zone is UTC), not the wall clock's
        day = stored_day(database_url).date().isoformat()
        rng = f"?from={day}&to={day}"
        seen: dict[str, float] = {}
        # each worker caches its own answers: the summary checked below is one that showed
        # the hit, not a later request that another worker answers from its stale copy
        summary: dict = {}
        while len(seen) < 3 and time.monotonic() - answered < VISIBLE_WITHIN + 1:
            answer = get_json(api + "summary" + rng)
            if column(answer, "views") == 1:
                summary = answer
            now = {
                "summary": column(answer, "views"),
                "visits": column(get_json(api + "visits" + rng), "views"),
                "realtime": column(get_json(api + "realtime"), "views"),
            }
            for name, views in now.items():
                assert views in (0, 1), (name, views)
                if views == 1:
                    seen.setdefault(name, time.monotonic() - answered)
            time.sleep(0.25)
        assert set(seen) == {"summary", "visits", "realtime"}, seen
        assert max(seen.values()) <= VISIBLE_WITHIN, seen
        assert summary["site"] == "shop.example"
        assert column(summary, "visitors") == 1
    finally:
        stop(server)
        log.close()
    assert server.returncode == 0, (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()
