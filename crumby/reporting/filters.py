"""Report filters (contract section 9): parsed strictly from the request, rendered as bound SQL.

A filter narrows what a report counts. **View attributes** are a page view's
own columns: ``page`` (its path), ``country``, ``browser``, ``os``,
``device``, ``language`` (as the ``languages`` report shows it, lower-cased),
and, as an extension, ``region`` and ``city`` (the ``Places`` report's
columns). **Session attributes** are those of the entry view of the session a
view belongs to: ``entry_page``, ``source``, ``utm_source``, ``utm_medium``,
``utm_campaign``. The ingest pipeline copies them onto every view of the
session when it stitches it (``crumby.ingest.sessions``), so each filter is a
plain comparison on the row a report already reads: no join, no window
function, whatever the range.

``(none)`` matches a missing value (NULL). Several filters combine with AND.
Values reach SQL only as bound parameters (``:f_country``), never as text.

Query templates call ``filters(alias)`` (a ``FilterHelper``), which renders
`` AND ...`` for the active filters or nothing; see ``FilterHelper.__call__``
for its readings (views, sessions, events, visitor days, visitors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crumby.store.base import expr

#: the special value that matches a missing value
NONE = "(none)"
#: the longest value a filter may have
MAX_LENGTH = 1000
#: view attributes: filter name -> visits column
VIEW_FILTERS = {
    "page": "doc_path",
    "country": "country",
    "browser": "browser",
    "os": "platform",
    "device": "device",
    "language": "lang",
    "region": "subdivision_1",
    "city": "city",
}
#: session attributes: filter name -> visits column, copied from the session's entry view
SESSION_FILTERS = {
    "entry_page": "entry_page",
    "source": "entry_source",
    "utm_source": "entry_utm_source",
    "utm_medium": "entry_utm_medium",
    "utm_campaign": "entry_utm_campaign",
}
#: the column of a session's entry view's value of each view attribute (``by="sessions"``)
ENTRY_OF_VIEW = {
    "page": "entry_page",
    "country": "entry_country",
    "browser": "entry_browser",
    "os": "entry_os",
    "device": "entry_device",
    "language": "entry_language",
    "region": "entry_region",
    "city": "entry_city",
}
#: for each reading of ``filters(alias, by=...)`` that compares a row's own columns: filter
#: name -> the column of ``alias`` it compares. Events carry their page's path and their
#: session's attributes (``crumby.ingest.eventsessions``): a view filter other than
#: ``page`` reads where the session began, as for whole sessions
COLUMNS = {
    "views": {**VIEW_FILTERS, **SESSION_FILTERS},
    "sessions": {**ENTRY_OF_VIEW, **SESSION_FILTERS},
    "events": {**ENTRY_OF_VIEW, "page": "doc_path", **SESSION_FILTERS},
}
#: the filters a ``visitor_days`` row can answer (``crumby.ingest.rollups``): those of a
#: view's device and place; a page or session filter needs the views themselves
VISITOR_DAY_FILTERS = {
    name: VIEW_FILTERS[name]
    for name in ("country", "browser", "os", "device", "language", "region", "city")
}
COLUMNS["visitor_days"] = VISITOR_DAY_FILTERS
#: every reading, those above and ``visitors``
READINGS = (*COLUMNS, "visitors")
#: every filter parameter, in the order answers list them
NAMES = (*VIEW_FILTERS, *SESSION_FILTERS)
#: what each filter matches, for README and the /api page
HELP = {
    "page": "a page path, as the documents report shows it (/pricing)",
    "country": "an ISO country code (DE)",
    "browser": "a browser name, as the browsers report shows it",
    "os": "an operating system, as the operating_systems report shows it",
    "device": "desktop, mobile or tablet",
    "language": "a browser language, as the languages report shows it (en-us; case is ignored)",
    "region": "a region (first subdivision), as the private locations report shows it",
    "city": "a city, as the private locations report shows it",
    "entry_page": "the path of the view a session began with",
    "source": "the host that referred a session's entry view, without www., or (direct)",
    "utm_source": "the utm_source of a session's entry view",
    "utm_medium": "the utm_medium of a session's entry view",
    "utm_campaign": "the utm_campaign of a session's entry view",
}


class FilterError(ValueError):
    """A filter parameter that cannot be used; the message names it, in one line."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class Filters(Mapping[str, str]):
    """The active filters of a request: name -> value as given, in ``NAMES`` order."""

    items_: tuple[tuple[str, str], ...] = ()

    def __getitem__(self, name: str) -> str:
        for key, value in self.items_:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _value in self.items_)

    def __len__(self) -> int:
        return len(self.items_)

    def as_dict(self) -> dict[str, str]:
        """For JSON answers: ``{"country": "DE"}``."""
        return dict(self.items_)

    def bind_values(self) -> dict[str, str]:
        """The bound parameter of each filter that compares a value (``(none)`` needs none)."""
        return {
            f"f_{name}": _normalised(name, value) for name, value in self.items_ if value != NONE
        }


def _normalised(name: str, value: str) -> str:
    # the languages report shows lower-cased tags; SQLite's lower() folds ASCII letters only,
    # so the value is folded the same way on every database
    if name == "language":
        return "".join(c.lower() if "A" <= c <= "Z" else c for c in value)
    return value


def parse_filters(args: Any) -> Filters:
    """The filters of a request's arguments (a MultiDict or a plain mapping); FilterError if bad.

    Every value must be given once, be non-empty, at most ``MAX_LENGTH``
    characters and hold no NUL (no stored value can: a NUL is refused rather
    than sent to a database that cannot take it).
    """
    found = []
    for name in NAMES:
        values = args.getlist(name) if hasattr(args, "getlist") else [args.get(name)]
        values = [v for v in values if v is not None]
        if not values:
            continue
        if len(values) > 1:
            raise FilterError(name, f"filter {name} is given {len(values)} times: give it once")
        value = values[0]
        if not isinstance(value, str) or value == "":
            raise FilterError(
                name, f"filter {name} must not be empty (use (none) for a missing value)"
            )
        if len(value) > MAX_LENGTH:
            raise FilterError(name, f"filter {name} is longer than {MAX_LENGTH} characters")
        if "\x00" in value:
            raise FilterError(name, f"filter {name} must not contain a NUL character")
        found.append((name, value))
    return Filters(tuple(found))


def filter_query(filters: Mapping[str, str]) -> str:
    """The filters as URL query text (``&country=DE``), for links that keep them."""
    from urllib.parse import urlencode

    return "&" + urlencode(list(filters.items())) if filters else ""


#: ``equals(column_sql, bind_name)``: the database's exact comparison (``crumby.store``)
Equals = Callable[[str, str], str]


class FilterHelper(Mapping[str, str]):
    """``filters`` in a query template: the active filters, and the helper that renders them.

    As a mapping it holds the active filters (``{% if filters.country %}``,
    ``filters["page"]``); called, it renders their SQL. ``used`` records
    whether a template called it, so that an answer can say it was filtered.
    """

    def __init__(self, filters: Filters, equals: Equals) -> None:
        self._filters = filters
        self._equals = equals
        self.used = False

    def __getitem__(self, name: str) -> str:
        return self._filters[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._filters)

    def __len__(self) -> int:
        return len(self._filters)

    def __call__(self, alias: str = "v", by: str = "views") -> str:
        """`` AND <conditions>`` on ``alias`` for the active filters, or ``""``.

        ``by="views"`` (the default): ``alias`` is a ``visits`` row; each view
        is checked on its own view attributes and on its session's attributes.

        ``by="sessions"``: for figures about sessions counted from their rows
        (entries, bounces, durations): view attributes are read from the
        session's entry view (``page`` as its entry page, ``country`` as the
        country it began in, ...), so that a session is in or out as a whole.

        ``by="events"``: ``alias`` is an ``events`` row, checked on the page it
        was sent from (``page``) and on the attributes of the session it falls
        in (the others, read as ``by="sessions"`` reads them). An event outside
        any session matches only ``(none)``.

        ``by="visitor_days"``: ``alias`` is a ``visitor_days`` row; only the
        filters of a view's device and place apply (``visitor_rows`` chooses).

        ``by="visitors"``: ``alias`` is any row with a visitor id (``cid``) and
        a site: it counts when its visitor has a page view in the report's
        range that matches every filter (a subquery over the range's views:
        slower than the others, for tables that carry no attributes).
        """
        if by not in READINGS:
            raise ValueError(
                f"filters(..., by=...) takes {', '.join(READINGS[:-1])} or {READINGS[-1]},"
                f" not {by!r}"
            )
        self.used = True
        if not self._filters:
            return ""
        if not self.covered_by(by):
            raise ValueError(
                f"filters(..., by={by!r}) cannot apply "
                + ", ".join(name for name in self._filters if name not in COLUMNS[by])
                + ": use visitor_rows(), which reads the views then"
            )
        alias = expr(alias)
        if by == "visitors":
            inner = self._conditions("fv", COLUMNS["views"])
            return (
                f" AND {alias}.cid IN (SELECT fv.cid FROM visits fv WHERE fv.site_id = :site_id"
                f" AND fv.datetime >= :t0 AND fv.datetime < :t1_next AND fv.is_bot = FALSE"
                f" AND {inner})"
            )
        return " AND " + self._conditions(alias, COLUMNS[by])

    def covered_by(self, by: str) -> bool:
        """Whether every active filter is a column of the reading ``by``."""
        columns = COLUMNS.get(by)
        return columns is None or all(name in columns for name in self._filters)

    def _conditions(self, alias: str, columns: Mapping[str, str]) -> str:
        parts = []
        for name, value in self._filters.items():
            target = f"{alias}.{columns[name]}"
            if value == NONE:
                parts.append(f"{target} IS NULL")
                continue
            if name == "language":
                target = f"lower({target})"
            parts.append(self._equals(target, f"f_{name}"))
        return " AND ".join(parts)


def uses_filters(source: str) -> bool:
    """Whether a query file's Jinja code mentions ``filters`` or ``visitor_rows`` (which apply
    them); otherwise it ignores them."""
    import re

    code = re.findall(r"\{\{.*?\}\}|\{%.*?%\}", source, flags=re.DOTALL)
    return any(re.search(r"\b(filters|visitor_rows)\b", part) for part in code)
