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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy import Boolean, Connection, DateTime, Row, String, Table, select

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
) -> Iterator[Row[Any]]:
    """The selected rows of table ``name`` by id (values in ``columns`` order), ``chunk`` a time."""
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
        yield from result
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
        keys = columns(name)
        times = _indexes(name, DateTime)
        site = keys.index("site_id")
        for row in rows(connection, name, selection):
            values = list(row)
            for i in times:
                if values[i] is not None:
                    values[i] = iso(values[i])
            record = {"type": kind, "site": hosts.get(values[site])}
            record.update(zip(keys, values, strict=True))
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    return written


def write_csv(connection: Connection, name: str, selection: Selection, out: TextIO) -> int:
    """A header row of the table's columns and ``site``, then one line per row.

    Text that a spreadsheet would run as a formula gets a leading apostrophe,
    as in ``crumby query --format csv``.
    """
    hosts = _hosts(connection)
    keys = columns(name)
    times = _indexes(name, DateTime)
    flags = _indexes(name, Boolean)
    texts = _indexes(name, String)
    site = keys.index("site_id")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*keys, "site"])
    written = 0
    for row in rows(connection, name, selection):
        values = list(row)
        for i in times:
            if values[i] is not None:
                values[i] = iso(values[i])
        for i in flags:
            values[i] = "true" if values[i] else "false"
        for i in texts:
            values[i] = neutralise(values[i])
        values.append(neutralise(hosts.get(values[site])))
        writer.writerow(values)
        written += 1
    return written


def iso(value: dt.datetime) -> str:
    """A stored (naive UTC) datetime as ISO 8601 with ``Z``."""
    return value.isoformat() + "Z"


def _hosts(connection: Connection) -> dict[int, str]:
    return {site.id: site.host for site in all_sites(connection)}


def _indexes(name: str, kind: type) -> list[int]:
    """Where the columns of a type stand in a row of table ``name``."""
    return [i for i, column in enumerate(TABLES[name].columns) if isinstance(column.type, kind)]
