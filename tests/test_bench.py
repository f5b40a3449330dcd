"""bench/ingest.py runs end to end on each database (a smoke run: figures are not judged)."""

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
    bare = re.search(r"^bare Flask 204\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)", out, re.M)
    crumby = re.search(r"^Crumby\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)", out, re.M)
    assert bare and crumby, out
    assert int(bare[1]) > 0 and int(crumby[1]) > 0
    assert int(crumby[4]) == int(crumby[5]) > 0  # 2xx answered == rows stored
    assert re.search(r"^ratio Crumby / bare: \d+\.\d\d$", out, re.M)
    assert "(equal)" in out
