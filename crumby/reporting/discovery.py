"""Finding query files: the built-in folders plus QUERY_FOLDER, looked at on every call.

Folders are listed afresh each time (a directory scan is cheap next to a query),
so a new, changed or deleted file takes effect without a restart. A request's
name is only ever looked up among the listed files, never joined to a path, so
it cannot reach a file outside these folders or a private query through the
public scope.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from crumby.reporting.filters import NAMES as FILTER_NAMES
from crumby.reporting.filters import uses_filters
from crumby.reporting.metadata import (
    declared_chart,
    declared_order,
    declared_row_filter,
    default_title,
    parse_metadata,
)

SCOPES = ("public", "private")
BUILTIN_FOLDER = Path(__file__).resolve().parent.parent / "templates" / "api"
#: a query name is a safe file stem: no dots, slashes or spaces
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
MAX_FILE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Query:
    """One report: a .sql file and its metadata."""

    name: str
    scope: str
    path: Path
    title: str
    description: str
    chart: str | None
    order: int
    meta: dict[str, str] = field(default_factory=dict, compare=False)
    #: (mtime_ns, size) of the file when read: part of cache keys
    version: tuple[int, int] = (0, 0)
    #: whether the file's template code uses ``filters``; one that does not ignores them
    uses_filters: bool = True
    #: the filters a row of the result stands for (``-- row_filter:``): name -> column
    row_filter: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """``public/visits``: how logs and errors name the query."""
        return f"{self.scope}/{self.name}"

    def source(self) -> str:
        """The file's current text."""
        return self.path.read_text(encoding="utf-8")


def folders(scope: str) -> list[Path]:
    """Where queries of this scope live, lowest precedence first."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    found = [BUILTIN_FOLDER / scope]
    extra = current_app.config.get("QUERY_FOLDER")
    if extra:
        found.append(Path(extra) / scope)
    return found


def _files(folder: Path) -> dict[str, Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}
    files = {}
    for entry in entries:
        stem, ext = os.path.splitext(entry.name)
        if ext == ".sql" and NAME.fullmatch(stem) and entry.is_file():
            files[stem] = Path(entry.path)
    return files


def _cache() -> dict[Path, tuple[tuple[int, int], Query]]:
    return current_app.extensions.setdefault("crumby.reporting.files", {})


def _load(name: str, scope: str, path: Path) -> Query | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    version = (stat.st_mtime_ns, stat.st_size)
    cached = _cache().get(path)
    if cached and cached[0] == version and cached[1].name == name and cached[1].scope == scope:
        return cached[1]
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            head = fh.read(MAX_FILE_BYTES)
    except OSError:
        return None
    meta = parse_metadata(head)
    query = Query(
        name=name,
        scope=scope,
        path=path,
        title=meta.get("title") or default_title(name),
        description=meta.get("description", ""),
        chart=declared_chart(meta),
        order=declared_order(meta),
        meta=meta,
        version=version,
        uses_filters=uses_filters(head),
        row_filter=declared_row_filter(meta, FILTER_NAMES),
    )
    _cache()[path] = (version, query)
    return query


def list_queries(scope: str) -> list[Query]:
    """Every query of a scope, sorted by (order, name); QUERY_FOLDER wins on equal names."""
    paths: dict[str, Path] = {}
    for folder in folders(scope):
        paths.update(_files(folder))
    queries = [q for name, path in paths.items() if (q := _load(name, scope, path))]
    return sorted(queries, key=lambda q: (q.order, q.name))


def get_query(scope: str, name: str) -> Query | None:
    """The query of that scope and name, or None (also for unsafe names and scopes)."""
    if scope not in SCOPES or not isinstance(name, str) or not NAME.fullmatch(name):
        return None
    path = None
    for folder in folders(scope):
        path = _files(folder).get(name, path)
    return _load(name, scope, path) if path else None
