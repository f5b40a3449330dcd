"""The API described: an HTML page at /api and an OpenAPI 3 document at /api/openapi.json.

Besides the reports, both describe ``POST /api/events`` (``crumby.appevents``).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template, request
from flask_login import current_user

from crumby import __version__
from crumby.database import CALENDAR_END, CALENDAR_START
from crumby.extensions import db
from crumby.reporting import bp
from crumby.reporting.compare import COMPARISONS
from crumby.reporting.dialects import HELP
from crumby.reporting.discovery import SCOPES, list_queries
from crumby.reporting.filters import HELP as FILTER_HELP
from crumby.reporting.filters import MAX_LENGTH, NONE, SESSION_FILTERS
from crumby.reporting.parameters import (
    INTERVALS,
    MAX_HOUR_DAYS,
    PARAMETERS,
    VERSIONS,
    declared,
)
from crumby.reporting.ranges import DEFAULT_DAYS
from crumby.sites import all_sites

RANGE_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "site",
        "in": "query",
        "description": "the site's host (www. folded); may be left out when only one site exists",
        "schema": {"type": "string"},
    },
    {
        "name": "days",
        "in": "query",
        "description": "the N days up to and including `to` (default today); 0 and 1 mean one day",
        "schema": {"type": "integer", "minimum": 0},
    },
    {
        "name": "from",
        "in": "query",
        "description": "first day, YYYY-MM-DD (alias t0); needs `to`",
        "schema": {"type": "string", "format": "date"},
    },
    {
        "name": "to",
        "in": "query",
        "description": "last day, YYYY-MM-DD (alias t1); default today",
        "schema": {"type": "string", "format": "date"},
    },
    {
        "name": "format",
        "in": "query",
        "description": "json (default) or csv",
        "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"},
    },
    {
        "name": "compare",
        "in": "query",
        "description": (
            "previous: the JSON answer adds `previous` (t0, t1, columns, data of the same "
            "number of days just before the range, same filters) and, for a one-row report, "
            "`changes` per number: {change, unit}, unit `pp` (percentage points) for rates, "
            "`%` for the rest (change null when the previous value is 0)"
        ),
        "schema": {"type": "string", "enum": list(COMPARISONS)},
    },
]

#: a date inside the calendar's span (the years are all its pattern can bound; ``format``
#: makes it a real day)
assert CALENDAR_START.year == 2000 and CALENDAR_END.year == 2099
_DATE_SCHEMA = {
    "type": "string",
    "format": "date",
    "pattern": "^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
}


def _present(*names: str) -> dict[str, Any]:
    """JSON Schema: at least one of these properties is there."""
    return {"anyOf": [{"required": [name]} for name in names]}


def _absent(*names: str) -> dict[str, Any]:
    """JSON Schema: none of these properties is there."""
    return {"not": _present(*names)}


#: the range as OpenAPI describes it: one exploded object (``?from=...&to=...``), since
#: OpenAPI cannot say how separate parameters depend on each other. Its three forms: none
#: (the last 30 days), ``days`` with an optional end, or a start and an end.
RANGE_OBJECT: dict[str, Any] = {
    "name": "range",
    "in": "query",
    "style": "form",
    "explode": True,
    "description": (
        f"the date range, in one of three forms: nothing (the last {DEFAULT_DAYS} days); "
        "`days`, optionally with `to`; or `from` and `to` (`t0` and `t1` are aliases, "
        "each instead of its name, not beside it). "
        "Days are the site's local dates. Beyond what the schema says: `from` must not be "
        f"after `to`, and `days` must not reach before {CALENDAR_START}."
    ),
    "schema": {
        "type": "object",
        "properties": {
            "days": {
                "type": "integer",
                "minimum": 0,
                "maximum": 999999,
                "description": "the N days up to and including `to` (default today); "
                "0 and 1 mean one day",
            },
            "from": {**_DATE_SCHEMA, "description": "first day, YYYY-MM-DD; needs `to`"},
            "to": {**_DATE_SCHEMA, "description": "last day, YYYY-MM-DD; needs `from` or `days`"},
            "t0": {**_DATE_SCHEMA, "description": "alias of `from` (not both)"},
            "t1": {**_DATE_SCHEMA, "description": "alias of `to` (not both)"},
        },
        "additionalProperties": False,
        "anyOf": [
            _absent("days", "from", "t0", "to", "t1"),
            {"required": ["days"], **_absent("from", "t0")},
            {"allOf": [_present("from", "t0"), _present("to", "t1"), _absent("days")]},
        ],
        # a name or its alias, not both
        "not": {"anyOf": [{"required": ["from", "t0"]}, {"required": ["to", "t1"]}]},
    },
}
#: what a report takes besides the range and the filters
REPORT_PARAMETERS: list[dict[str, Any]] = [
    p for p in RANGE_PARAMETERS if p["name"] not in ("days", "from", "to")
] + [RANGE_OBJECT]

#: parameters a report may declare that the request may leave out
_OPTIONAL: dict[str, dict[str, Any]] = {
    "interval": {
        "name": "interval",
        "in": "query",
        "required": False,
        "description": (
            "for a time series that declares it (visits): its buckets in the site's local "
            "time: hour (ranges of at most "
            f"{MAX_HOUR_DAYS} days), day (default), week (from Monday) or month; the first "
            "column is named after it (date for day)"
        ),
        "schema": {"type": "string", "enum": list(INTERVALS), "default": "day"},
    },
    "versions": {
        "name": "versions",
        "in": "query",
        "required": False,
        "description": (
            "for a breakdown that declares it (browsers, operating_systems): on splits its "
            "rows by version"
        ),
        "schema": {"type": "string", "enum": list(VERSIONS), "default": "off"},
    },
}

#: the filters (contract section 9), as query parameters
FILTER_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": name,
        "in": "query",
        "description": (
            f"{'session' if name in SESSION_FILTERS else 'view'} filter: {text}; "
            f"{NONE} matches a missing value"
        ),
        # no NUL: no stored value holds one, and not every database can take one
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_LENGTH,
            "pattern": "^[^\\x00]*$",
        },
    }
    for name, text in FILTER_HELP.items()
]

_ERROR = {
    "description": "an error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            }
        }
    },
}
_RESULT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "chart": {"type": "string", "enum": ["line", "bar", "pie", "map", "table", "kpi"]},
        "columns": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "array", "items": {}}},
        "t0": {"type": "string", "format": "date"},
        "t1": {"type": "string", "format": "date"},
        "filters": {"type": "object", "additionalProperties": {"type": "string"}},
        "ignores_filters": {"type": "boolean"},
        "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
        "previous": {
            "type": "object",
            "properties": {
                "t0": {"type": "string", "format": "date"},
                "t1": {"type": "string", "format": "date"},
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array", "items": {}}},
            },
        },
        "changes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "change": {"type": "number", "nullable": True},
                    "unit": {"type": "string", "enum": ["pp", "%"]},
                },
            },
        },
    },
    "required": ["columns", "data"],
}
_LISTING_SCHEMA = {
    "type": "object",
    "properties": {
        "queries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    **{
                        k: {"type": "integer" if k == "order" else "string"}
                        for k in ("name", "url", "title", "description", "chart", "order")
                    },
                    "ignores_filters": {"type": "boolean"},
                    "row_filter": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        }
    },
}


def _operation(summary: str, description: str, scope: str, schema: dict, params: list) -> dict:
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": schema}},
        },
        "400": _ERROR,
        "404": _ERROR,
    }
    if params:
        responses["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
        responses["500"] = _ERROR
        responses["504"] = _ERROR
    operation: dict[str, Any] = {
        "summary": summary,
        "description": description,
        "tags": [scope],
        "parameters": params,
        "responses": responses,
    }
    if scope == "private":
        operation["security"] = [{"bearer": []}, {"session": []}]
        responses["401"] = _ERROR
    return operation


def events_operation() -> dict[str, Any]:
    """``POST /api/events`` (``crumby.appevents``), described."""
    from crumby import appevents

    item = {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "maxLength": appevents.NAME_LENGTH,
                # blank (or NUL) alone is no name: stripped, it is empty
                "pattern": "[^\\s\\x00]",
            },
            "value": {
                "description": (
                    "any JSON value; stored as its JSON text "
                    f"(at most {appevents.VALUE_LENGTH} characters)"
                ),
                "nullable": True,
            },
            "cid": {"type": "string", "maxLength": appevents.CID_LENGTH},
            "page": {
                "type": "string",
                "maxLength": appevents.PAGE_LENGTH,
                "pattern": "^[\\s\\x00]*(/|$)",
                "description": "a path starting with / (blanks around it are dropped; blank: none)",
            },
            "datetime": {
                "type": "string",
                "format": "date-time",
                "description": (
                    "ISO 8601; an offset or Z converts to UTC, none means UTC; default now; "
                    f"at most {appevents.MAX_AGE.days} days old and not in the future "
                    f"({int(appevents.FUTURE_SKEW.total_seconds())} s of clock skew allowed)"
                ),
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    bad_item = {
        "description": "nothing stored: the body, or the item at `index` (from 0), is bad",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "index": {"type": "integer"}},
                    "required": ["error"],
                }
            }
        },
    }
    return {
        "summary": "Send app events",
        "description": (
            f"Stores up to {appevents.MAX_EVENTS} events in one transaction: all of them, "
            "or none when any item is bad. Needs a bearer token (`crumby token NAME`, "
            "optionally `--site HOST --ingest-only`); no session, no CSRF token."
        ),
        "tags": ["events"],
        "parameters": [
            {
                "name": "site",
                "in": "query",
                "description": (
                    "the site's host; may be left out when only one site exists or the "
                    "token is limited to a site"
                ),
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "maxItems": appevents.MAX_EVENTS, "items": item}
                }
            },
        },
        "responses": {
            "200": {
                "description": "every event stored",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"stored": {"type": "integer"}},
                            "required": ["stored"],
                        }
                    }
                },
            },
            "400": bad_item,
            "401": _ERROR,
            "403": _ERROR,
            "404": _ERROR,
            "413": _ERROR,
            "503": _ERROR,
        },
        "security": [{"bearer": []}],
    }


def visible_scopes() -> tuple[str, ...]:
    """Private queries' names and descriptions are shown only to those who may run them."""
    return SCOPES if current_user.is_authenticated else ("public",)


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3 for the listings and every query the caller may run."""
    paths: dict[str, Any] = {}
    for scope in SCOPES:
        paths[f"/api/{scope}"] = {
            "get": _operation(f"List the {scope} queries", "", scope, _LISTING_SCHEMA, [])
        }
    for scope in visible_scopes():
        for query in list_queries(scope):
            params = REPORT_PARAMETERS + [
                _OPTIONAL.get(name)
                or {
                    "name": name,
                    "in": "query",
                    "required": True,
                    "description": f"this report's own parameter: {PARAMETERS[name].hint}",
                    # a blank value is refused like a missing one
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 1000,
                        "pattern": r"\S",
                    },
                }
                for name in declared(query)
                if name in PARAMETERS
            ]
            paths[f"/api/{scope}/{query.name}"] = {
                "get": _operation(
                    query.title,
                    query.description,
                    scope,
                    _RESULT_SCHEMA,
                    params + FILTER_PARAMETERS,
                )
            }
    paths["/api/events"] = {"post": events_operation()}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Crumby reporting API",
            "version": __version__,
            "description": (
                f"Every .sql report as JSON or CSV. Without a range: the last {DEFAULT_DAYS} days. "
                "App events go in with POST /api/events."
            ),
        },
        "servers": [{"url": request.host_url.rstrip("/")}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            }
        },
    }


@bp.get("/api/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 description, generated from the discovered queries."""
    return jsonify(openapi_document())


@bp.get("/api")
def api_page() -> str:
    """The API documented for people: endpoints, parameters, every query with an example."""
    scopes = {scope: list_queries(scope) for scope in visible_scopes()}
    with db.engine.connect() as connection:
        sites = [s for s in all_sites(connection) if s.public or current_user.is_authenticated]
    return render_template(
        "reporting/api.html",
        scopes=scopes,
        parameters=RANGE_PARAMETERS + list(_OPTIONAL.values()),
        filters=FILTER_PARAMETERS,
        none=NONE,
        max_length=MAX_LENGTH,
        helpers=HELP,
        host=request.host_url.rstrip("/"),
        logged_in=current_user.is_authenticated,
        example_site=sites[0].host if sites else "example.org",
        events=_events_limits(),
    )


def _events_limits() -> dict[str, int]:
    from crumby import appevents

    return {
        "max_events": appevents.MAX_EVENTS,
        "max_age_days": appevents.MAX_AGE.days,
        "skew_seconds": int(appevents.FUTURE_SKEW.total_seconds()),
        "value_length": appevents.VALUE_LENGTH,
    }
