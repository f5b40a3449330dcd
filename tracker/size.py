"""Each built tracker's gzipped size against its budget (``npm run size``; CI runs it too).

The budgets are in ``tracker/budgets.json``: ``{"FILE": bytes}`` for each file
that ``npm run build`` writes to ``crumby/static/``. A size is that of
``gzip -9 < FILE`` (deflate level 9 with a 10-byte header and no file name),
which Python's ``gzip.compress(data, 9)`` gives byte for byte. Exits 1 when a
build is over its budget or missing. ``tests/test_tracker_size.py`` runs the
same ``check``, so a pull request that grows the tracker past a budget fails.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = ROOT / "tracker" / "budgets.json"
STATIC = ROOT / "crumby" / "static"


def gzipped_size(data: bytes) -> int:
    """Bytes of ``data`` gzipped at level 9, as ``gzip -9`` sends it."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def check(budgets: dict[str, int] | None = None, static: Path = STATIC) -> list[str]:
    """One line per build, ``FILE: N bytes gzipped (budget B) ok|OVER BUDGET|MISSING``."""
    if budgets is None:
        budgets = json.loads(BUDGETS.read_text())
    lines = []
    for name, budget in budgets.items():
        path = static / name
        if not path.is_file():
            lines.append(f"{name}: MISSING (budget {budget}); run npm run build")
            continue
        size = gzipped_size(path.read_bytes())
        verdict = "ok" if size <= budget else "OVER BUDGET"
        lines.append(f"{name}: {size} bytes gzipped (budget {budget}) {verdict}")
    return lines


def main() -> int:
    """Print the check; 1 if any build is over budget or missing."""
    lines = check()
    print("\n".join(lines))
    return 0 if all(line.endswith(" ok") for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
