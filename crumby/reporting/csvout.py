"""CSV output that a spreadsheet opens as data, never as formulas.

A cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is a
formula to Excel and LibreOffice (CSV injection); such text cells get a leading
apostrophe, the OWASP advice. Numbers stay numbers, so ``-3`` is left alone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """The cell as it should be written: text that looks like a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A header row and the data rows, every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in columns])
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
    return out.getvalue()
