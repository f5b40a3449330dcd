"""bench/ingest.py runs end to end on each database, with and without keep-alive.

A smoke run: the figures are not judged, but every one is there and no hit is lost.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "bench" / "ingest.py"


def test_ingest_benchmark_reports_rates_latency_and_no_lost_hit(database_url):
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--seconds",
            "1",
            "--warmup",
            "1",
            "--concurrency",
            "8",
            "--database",
            database_url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # the shipped systemd unit's gunicorn settings
    assert "--workers 2 --threads 8 " in out, out
    number = r"\s+([\d.]+)"
    for mode in ("keep-alive", "close"):
        bare = re.search(
            rf"^bare Flask 204{number * 4}\s+-{number * 2}\s+-{number}\s+{mode}$", out, re.M
        )
        crumby = re.search(rf"^Crumby{number * 7}\s+(\S+){number}\s+{mode}$", out, re.M)
        assert bare and crumby, (mode, out)
        rps, _p50, _p99, ok, wall, cpu, per_hit = map(float, bare.groups())
        assert rps > 0 and ok > 0 and wall > 0 and cpu > 0 and per_hit > 0
        rps, _p50, _p99, ok, stored, wall, cpu, db_cpu, per_hit = crumby.groups()
        assert float(rps) > 0 and float(wall) > 0 and float(cpu) > 0 and float(per_hit) > 0
        assert int(ok) == int(stored) > 0  # 2xx answered == rows stored
        assert (db_cpu == "-") == database_url.startswith("sqlite"), db_cpu
        assert re.search(rf"^ratio Crumby / bare, {mode}: \d+\.\d\d$", out, re.M)
        assert re.search(rf"^rows stored vs 2xx answered, {mode}: (\d+) / \1 \(equal\)$", out, re.M)


REPORTS = Path(__file__).parents[1] / "bench" / "reports.py"


def test_reports_benchmark_seeds_two_sites_and_times_one(database_url, app):
    """bench/reports.py stores both sites' rows through the pipeline and reports on one."""
    command = [sys.executable, str(REPORTS), "--rows", "400", "--other-rows", "300"]
    command += ["--span-days", "40", "--only", "summary,visits,events", "--database", database_url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(
        r"filled 400 visits of site\.example and 300 of other\.example \(70 events\) "
        r"through the ingest pipeline",
        out,
    ), out
    assert "reports of site.example (400 of the table's visits)" in out
    for key in ("public/summary", "public/visits", "private/events"):
        assert re.search(rf"^{key}\s+((\d+|\d+\.\d|inf)\s+){{8}}(ok|MISS)$", out, re.M), (key, out)
    # a second run reuses the filled tables
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert "reusing 400 + 300 visits" in again.stdout
