"""A query file's metadata: the leading ``-- key: value`` comment block, and chart inference."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

CHARTS = ("line", "bar", "pie", "map", "table", "kpi", "funnel")
DEFAULT_ORDER = 100
_LINE = re.compile(r"--\s*([A-Za-z_][A-Za-z0-9_-]*)\s*:\s*(.*?)\s*$")
_TIME_COLUMNS = {"date", "day", "hour", "week", "month"}
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+Z?)?")


def parse_metadata(text: str) -> dict[str, str]:
    """Keys from the comment lines at the top of the file, before the first SQL line.

    Blank lines and comments that are not ``key: value`` are allowed in the block;
    a repeated ``description`` line continues the description. Keys are lower-cased.
    """
    meta: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            break
        match = _LINE.match(line)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key == "description" and meta.get(key):
            meta[key] = f"{meta[key]} {value}"
        else:
            meta[key] = value
    return meta


def default_title(name: str) -> str:
    """``entry_pages`` -> ``Entry pages``."""
    words = name.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


def declared_chart(meta: dict[str, str]) -> str | None:
    """The chart the author asked for, or None (an unknown value is ignored)."""
    value = meta.get("chart", "").strip().lower()
    return value if value in CHARTS else None


def declared_order(meta: dict[str, str]) -> int:
    """The ``order`` key as an int, default 100."""
    try:
        return int(meta.get("order", DEFAULT_ORDER))
    except ValueError:
        return DEFAULT_ORDER


def declared_row_filter(meta: dict[str, str], names: Sequence[str]) -> dict[str, str]:
    """``-- row_filter: os=platform browser=browser``: the filters a row of the result stands
    for (filter name -> the column holding its value), for the dashboard's clicks.

    Unknown filter names and malformed pairs are left out.
    """
    found = {}
    for pair in meta.get("row_filter", "").split():
        name, _, column = pair.partition("=")
        if name in names and column and name not in found:
            found[name] = column
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_iso_date(value: Any) -> bool:
    return isinstance(value, dt.date) or (
        isinstance(value, str) and bool(_ISO_DAY.fullmatch(value))
    )


def infer_chart(columns: Sequence[str], data: Sequence[Sequence[Any]]) -> str:
    """The chart for a result without a declared one (see INTERFACES: chart inference)."""
    if not columns:
        return "table"
    first = columns[0].lower()
    first_values = [row[0] for row in data if row and row[0] is not None]
    if first in _TIME_COLUMNS or (first_values and all(_is_iso_date(v) for v in first_values)):
        return "line"
    if any(c.lower() == "country" for c in columns):
        return "map"
    if len(columns) == 2:
        second = [row[1] for row in data if len(row) > 1 and row[1] is not None]
        if all(_is_number(v) for v in second):
            return "bar"
    return "table"
