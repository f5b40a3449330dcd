"""Stored rows written out as they are: JSON lines of visits and events, or one table as CSV.

For a visitor's access request (``--cid``), a site's archive before a
``prune``, or a move to another tool. Rows are read with a server-side
cursor (``yield_per``) and written one by one, so an export of any size
runs in the same small memory. Datetimes are UTC, written as ISO 8601 with
a ``Z``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy import Connection, Table, select

from crumby.models import Event, Visit
from crumby.reporting.csvout import neutralise
from crumby.sites import all_sites

TABLES: dict[str, Table] = {
    "visits": Visit.__table__,  # type: ignore[dict-item]
    "events": Event.__table__,  # type: ignore[dict-item]
}
#: the ``type`` of a JSON line from each table
KINDS = {"visits": "visit", "events": "event"}
#: rows fetched from the database at a time
CHUNK = 1000


@dataclass(frozen=True)
class Selection:
    """Which rows to export: all, or those of one site, one visitor, a time span (UTC)."""

    site_id: int | None = None
    cid: str | None = None
    start: dt.datetime | None = None
    #: exclusive
    end: dt.datetime | None = None


def columns(name: str) -> list[str]:
    """The column names of table ``name``, as stored (contract section 5)."""
    return [column.name for column in TABLES[name].columns]


def rows(
    connection: Connection, name: str, selection: Selection, chunk: int = CHUNK
) -> Iterator[Mapping[str, Any]]:
    """The selected rows of table ``name`` in id order, fetched ``chunk`` at a time."""
    table = TABLES[name]
    query = select(table).order_by(table.c.id)
    if selection.site_id is not None:
        query = query.where(table.c.site_id == selection.site_id)
    if selection.cid is not None:
        query = query.where(table.c.cid == selection.cid)
    if selection.start is not None:
        query = query.where(table.c.datetime >= selection.start)
    if selection.end is not None:
        query = query.where(table.c.datetime < selection.end)
    result = connection.execute(query.execution_options(yield_per=chunk))
    try:
        yield from result.mappings()
    finally:
        result.close()


def write_jsonl(
    connection: Connection, names: Iterable[str], selection: Selection, out: TextIO
) -> int:
    """One JSON object per row, with ``type`` and ``site``; returns the rows written."""
    hosts = _hosts(connection)
    written = 0
    for name in names:
        kind = KINDS[name]
        for row in rows(connection, name, selection):
            record: dict[str, Any] = {"type": kind, "site": hosts.get(row["site_id"])}
            record.update((key, _json_value(value)) for key, value in row.items())
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    return written


def write_csv(connection: Connection, name: str, selection: Selection, out: TextIO) -> int:
    """A header row of the table's columns and ``site``, then one line per row.

    Text that a spreadsheet would run as a formula gets a leading apostrophe,
    as in ``crumby query --format csv``.
    """
    hosts = _hosts(connection)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*columns(name), "site"])
    written = 0
    for row in rows(connection, name, selection):
        cells = [neutralise(_text(value)) for value in row.values()]
        writer.writerow([*cells, neutralise(hosts.get(row["site_id"]))])
        written += 1
    return written


def iso(value: dt.datetime) -> str:
    """A stored (naive UTC) datetime as ISO 8601 with ``Z``."""
    return value.isoformat() + "Z"


def _hosts(connection: Connection) -> dict[int, str]:
    return {site.id: site.host for site in all_sites(connection)}


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso(value)
    return value


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
