"""Schemathesis against Crumby's own /api/openapi.json: no 5xx, answers as described.

Every operation the document describes (as a token holder sees it: the
private reports too) gets valid and invalid requests generated from its
description; each answer must be no 5xx and conform to the document
(status code, content type, headers, body schema), and valid requests
must be accepted. Generation is derandomized: the same cases every run.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from crumby import accounts, clock
from crumby.database import CALENDAR_START
from crumby.extensions import db
from crumby.ingest import store
from crumby.reporting.discovery import BUILTIN_FOLDER, SCOPES
from crumby.sites import add_site

NOW = dt.datetime(2026, 3, 10, 12, 0, 0)
#: the site's local date at NOW
TODAY = dt.date(2026, 3, 10)
SITE = "schema.example"
PUBLIC_QUERIES = list((BUILTIN_FOLDER / "public").glob("*.sql"))
#: every operation of the document: the listings, each built-in report, app events
OPERATIONS = (
    [f"GET /api/{scope}" for scope in SCOPES]
    + [
        f"GET /api/{scope}/{path.stem}"
        for scope in SCOPES
        for path in sorted((BUILTIN_FOLDER / scope).glob("*.sql"))
    ]
    + ["POST /api/events"]
)
EXAMPLES = settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def follows_the_range_rules(case) -> bool:
    """The range rules the document states in words, as JSON Schema cannot compare values:
    ``from`` not after ``to``, and ``days`` not reaching before the calendar's first day."""
    query = case.query or {}
    start, end = query.get("from", query.get("t0")), query.get("to", query.get("t1"))
    if start is not None and end is not None:
        return str(start) <= str(end)
    if "days" in query:
        try:
            last = dt.date.fromisoformat(str(end)) if end is not None else TODAY
            return last - dt.timedelta(days=max(int(query["days"]), 1) - 1) >= CALENDAR_START
        except (ValueError, OverflowError):
            return True  # not a valid range at all: the schema's part to say
    return True


def is_unicode_text(case) -> bool:
    """JSON Schema's strings are Unicode text, but generated ones may hold lone surrogates
    (no Unicode character at all), which the API rejects with a 400 naming them."""
    try:
        json.dumps(case.body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except TypeError:  # no JSON body
        pass
    return True


def events_within_their_window(case):
    """App events' datetimes moved into the window the document states in words: at most
    7 days old and not in the future (JSON Schema cannot compare a value with now)."""
    if case.operation.label == "POST /api/events" and isinstance(case.body, list):
        for n, item in enumerate(case.body):
            if isinstance(item, dict) and "datetime" in item:
                item["datetime"] = (NOW - dt.timedelta(minutes=17 * n)).isoformat() + "Z"
    return case


@pytest.fixture
def token(app) -> str:
    """A site with a few views, a goal and a funnel; the token of a user who may read it all."""
    clock.pin(app, NOW)
    with app.app_context():
        with db.engine.begin() as connection:
            add_site(connection, SITE, "Europe/Berlin", public=True)
        accounts.add_user("ann", "a long password")
        token = accounts.create_token("ann")
    store(
        app,
        visits=[
            {
                "datetime": NOW - dt.timedelta(hours=n),
                "doc_uri": f"https://{SITE}/page-{n % 3}",
                "cid": f"visitor-{n % 4}",
                "browser": "Firefox",
                "platform": "Linux",
            }
            for n in range(12)
        ],
    )
    return token


def test_the_document_describes_exactly_the_operations_tested(app, token):
    schema = schemathesis.openapi.from_wsgi(
        "/api/openapi.json", app, headers={"Authorization": f"Bearer {token}"}
    )
    described = {result.ok().label for result in schema.get_all_operations()}
    assert described == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_operation_answers_as_described_and_never_5xx(app, token, label):
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, headers=headers)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not described in /api/openapi.json"
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE)
        .filter(follows_the_range_rules)
        .filter(is_unicode_text)
        .map(events_within_their_window),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @EXAMPLES
    @given(case=cases)
    def check(case):
        case.call_and_validate(headers=headers)

    check()


@pytest.mark.parametrize("path", [f"/api/public/{p.stem}" for p in sorted(PUBLIC_QUERIES)])
def test_every_report_answers_the_whole_calendar_in_a_daylight_saving_zone(client, token, path):
    # found by schemathesis: over a century, a zone's local-time expression has a branch per
    # clock change (200), which the SQL helpers once refused as too long (a 500)
    answer = client.get(
        path,
        query_string={"site": SITE, "from": "2000-01-01", "to": "2099-12-31"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["t0"], body["t1"]) == ("2000-01-01", "2099-12-31")
    if path.endswith("/visits"):  # a row per day, the seeded views on their local day
        assert len(body["data"]) == (dt.date(2099, 12, 31) - dt.date(2000, 1, 1)).days + 1
        assert sum(row[body["columns"].index("views")] for row in body["data"]) == 12
