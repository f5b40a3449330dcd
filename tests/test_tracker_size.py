"""The tracker builds stay within their gzipped size budgets (what ``npm run size`` checks)."""

from __future__ import annotations

import gzip
import json
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
SIZE = runpy.run_path(str(ROOT / "tracker" / "size.py"))
BUDGETS = json.loads((ROOT / "tracker" / "budgets.json").read_text())


def test_every_build_is_within_its_budget():
    lines = SIZE["check"]()
    assert len(lines) == len(BUDGETS) >= 2
    assert all(line.endswith(" ok") for line in lines), lines


def test_the_default_build_keeps_its_800_byte_budget_and_the_contracts_1000():
    assert BUDGETS["cmb.js"] <= 800
    data = (ROOT / "crumby" / "static" / "cmb.js").read_bytes()
    assert len(gzip.compress(data, 9)) <= BUDGETS["cmb.js"]


def test_the_size_is_what_gzip_9_gives(tmp_path):
    data = (ROOT / "crumby" / "static" / "cmb.auto.js").read_bytes()
    assert SIZE["gzipped_size"](data) == len(gzip.compress(data, 9))


def test_a_build_over_its_budget_or_missing_fails_the_check(tmp_path):
    (tmp_path / "big.js").write_bytes(bytes(range(256)) * 8)
    lines = SIZE["check"]({"big.js": 100, "gone.js": 100}, tmp_path)
    assert lines[0].startswith("big.js: ") and lines[0].endswith("OVER BUDGET")
    assert lines[1].startswith("gone.js: MISSING")


def test_the_script_npm_runs_exits_zero_and_prints_each_build():
    package = json.loads((ROOT / "package.json").read_text())
    assert package["scripts"]["size"] == "python3 tracker/size.py"
    done = subprocess.run(
        [sys.executable, "tracker/size.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == list(BUDGETS)
