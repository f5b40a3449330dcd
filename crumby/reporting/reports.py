"""Running a discovered query for a range: render, execute, shape, cache, explain failures."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from flask import Flask, current_app
from flask_caching import Cache
from jinja2 import TemplateError
from sqlalchemy.exc import SQLAlchemyError

from crumby import clock
from crumby.database import describe
from crumby.extensions import db
from crumby.operations.metrics import REPORT_SECONDS
from crumby.reporting import parameters, rendering, running
from crumby.reporting.dialects import DialectError
from crumby.reporting.discovery import Query
from crumby.reporting.filters import Filters
from crumby.reporting.metadata import infer_chart
from crumby.sites import SiteInfo, localtime

#: public results, per app (Flask-Caching keeps one backend per app in app.extensions)
cache = Cache()


class QueryError(Exception):
    """A query that could not run: ``status`` is 500 for a broken file, 504 for a timeout."""

    def __init__(self, query: Query, status: int, reason: str) -> None:
        super().__init__(f"query {query.key} failed: {reason}")
        self.query = query
        self.status = status

    @property
    def public_message(self) -> str:
        """What an anonymous caller is told: a broken file's database error stays in the log
        and with logged-in users (it can show table names, SQL and values)."""
        if self.status == 500:
            return f"query {self.query.key} failed; the server's log has the details"
        return str(self)


@dataclass(frozen=True)
class Result:
    """A query's answer, JSON-ready."""

    columns: list[str]
    data: list[list[Any]]
    sql: str
    chart: str
    t0: dt.date
    t1: dt.date
    #: how long this answer may be reused: short when its range reaches today
    max_age: int = 0
    #: whether the query applied the filters (a custom query may ignore them)
    filtered: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The cacheable part."""
        return {
            "columns": self.columns,
            "data": self.data,
            "sql": self.sql,
            "chart": self.chart,
            "t0": self.t0.isoformat(),
            "t1": self.t1.isoformat(),
            "max_age": self.max_age,
            "filtered": self.filtered,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Result:
        """Undo ``as_dict``."""
        return cls(
            columns=value["columns"],
            data=value["data"],
            sql=value["sql"],
            chart=value["chart"],
            t0=dt.date.fromisoformat(value["t0"]),
            t1=dt.date.fromisoformat(value["t1"]),
            max_age=value.get("max_age", 0),
            filtered=value.get("filtered", True),
        )


def init_app(app: Flask) -> None:
    """Bind the result cache: REPORT_CACHE_TYPE (a Flask-Caching type) for REPORT_CACHE_SECONDS."""
    cache.init_app(
        app,
        config={
            # the backend's own CACHE_* keys (CACHE_REDIS_URL, ...) pass through
            **{k: v for k, v in app.config.items() if k.startswith("CACHE_")},
            "CACHE_TYPE": app.config.get("REPORT_CACHE_TYPE") or "SimpleCache",
            "CACHE_DEFAULT_TIMEOUT": int(app.config.get("REPORT_CACHE_SECONDS") or 0),
            "CACHE_KEY_PREFIX": "crumby-report:",
        },
    )


#: answers whose range reaches today are reused at most this long, so that a hit shows in
#: every report within 10 seconds of its 2xx answer (contract section 6)
LIVE_SECONDS = 5


def _cache_key(
    query: Query,
    site: SiteInfo,
    t0: dt.date,
    t1: dt.date,
    params: Mapping[str, Any],
    filters: Filters,
) -> str:
    # The file's version is part of the key so that an edited query is not served stale; the
    # site's id, zone and data version so that no answer crosses sites or outlives a change
    # (goal and funnel changes move the data version on too), the query's parameters, and
    # the filters (a digest: values may be 1,000 characters, memcached keys 250 bytes).
    key = (
        f"{query.key}:{query.version[0]}:{query.version[1]}:"
        f"{site.id}:{site.timezone}:{site.data_version}:{t0}:{t1}"
        + "".join(f":{name}={bound.value!r}" for name, bound in sorted(params.items()))
    )
    if filters:
        text = json.dumps(list(filters.items()), ensure_ascii=True)
        key += ":" + hashlib.sha256(text.encode()).hexdigest()[:32]
    return key


def max_age(site: SiteInfo, t1: dt.date, now: dt.datetime) -> int:
    """Seconds an answer for a range ending ``t1`` may be reused."""
    seconds = int(current_app.config.get("REPORT_CACHE_SECONDS") or 0)
    # yesterday too: a late hit of a visitor whose session began yesterday still lands there
    if t1 >= localtime.local_today(site.timezone, now) - dt.timedelta(days=1):
        return min(seconds, LIVE_SECONDS)
    return seconds


def run_query(
    query: Query,
    site: SiteInfo,
    t0: dt.date,
    t1: dt.date,
    filters: Filters | None = None,
    *,
    use_cache: bool = True,
    params: Mapping[str, rendering.Bound] | None = None,
) -> Result:
    """Run ``query`` for a site's inclusive local range t0..t1 and filters; public results
    are cached.

    ``params`` are the query's own parameters (``parameters.resolve``); a query
    that declares some and gets none fails with a QueryError of status 400.
    """
    filters = filters or Filters()
    params = {**parameters.defaults(query), **(params or {})}
    missing = [name for name in parameters.declared(query) if name not in params]
    if missing:
        raise QueryError(query, 400, f"the {query.name} report needs {', '.join(missing)}=...")
    now = clock.now()
    seconds = max_age(site, t1, now)
    cacheable = use_cache and query.scope == "public" and seconds > 0
    key = _cache_key(query, site, t0, t1, params, filters)
    if cacheable:
        hit = cache.get(key)
        if hit is not None:
            return Result.from_dict(hit)
    result = _run(query, site, t0, t1, now, params, filters)
    if ":now" in result.sql:  # realtime and the like: never older than the live limit
        seconds = min(seconds, LIVE_SECONDS)
    result = replace(result, max_age=seconds if cacheable else 0)
    if cacheable:
        cache.set(key, result.as_dict(), timeout=seconds)
    return result


def render_query(
    query: Query,
    site: SiteInfo,
    t0: dt.date,
    t1: dt.date,
    now: dt.datetime | None = None,
    params: Mapping[str, rendering.Bound] | None = None,
    filters: Filters | None = None,
) -> rendering.Rendered:
    """The SQL and parameters the query would run with; QueryError if the file is broken."""
    try:
        source = query.source()
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryError(query, 500, f"cannot read {query.path.name}: {exc}") from None
    dialect = db.engine.dialect.name
    try:
        return rendering.render(
            source,
            dialect,
            site,
            t0,
            t1,
            now=now or clock.now(),
            filters=filters,
            parameters=params,
        )
    except (TemplateError, DialectError) as exc:
        current_app.logger.error("query %s does not render: %s", query.key, exc)
        raise QueryError(query, 500, f"template error: {exc}") from None
    except Exception as exc:  # a sandbox violation or a helper misuse inside the template
        current_app.logger.error("query %s does not render: %r", query.key, exc)
        raise QueryError(query, 500, f"template error: {type(exc).__name__}: {exc}") from None


def _run(
    query: Query,
    site: SiteInfo,
    t0: dt.date,
    t1: dt.date,
    now: dt.datetime,
    params: Mapping[str, rendering.Bound] | None = None,
    filters: Filters | None = None,
) -> Result:
    rendered = render_query(query, site, t0, t1, now, params, filters)
    seconds = float(current_app.config.get("REPORT_TIMEOUT_SECONDS") or 10)
    started = time.perf_counter()
    try:
        raw = running.execute(rendered, seconds)
    except running.QueryTimeout as exc:
        current_app.logger.error("query %s timed out (%s); SQL:\n%s", query.key, exc, rendered.sql)
        raise QueryError(query, 504, str(exc)) from None
    except SQLAlchemyError as exc:
        current_app.logger.error(
            "query %s failed: %s; SQL:\n%s", query.key, describe(exc), rendered.sql
        )
        raise QueryError(query, 500, describe(exc)) from None
    finally:
        REPORT_SECONDS.labels(query=query.key).observe(time.perf_counter() - started)
    data = running.to_json_rows(raw.rows)
    chart = query.chart or infer_chart(raw.columns, data)
    return Result(
        columns=raw.columns,
        data=data,
        sql=rendered.sql,
        chart=chart,
        t0=t0,
        t1=t1,
        filtered=rendered.filtered,
    )


def listed_chart(query: Query) -> str:
    """The chart for listings: declared, else inferred once per file version from a sample run."""
    if query.chart:
        return query.chart
    charts = current_app.extensions.setdefault("crumby.reporting.charts", {})
    key = (query.key, query.version)
    if key not in charts:
        # a sample week of a site that is not stored: the columns decide, not the data
        sample = SiteInfo(id=0, host="example.invalid")
        now = clock.now()
        today = now.date()
        try:
            params = parameters.examples(query)
            charts[key] = _run(
                query, sample, today - dt.timedelta(days=6), today, now, params
            ).chart
        except (QueryError, parameters.ParameterError):
            charts[key] = "table"
    return charts[key]
