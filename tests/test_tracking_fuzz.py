"""No input makes /visit or /event answer 500: hypothesis throws everything at them."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crumby.extensions import db
from crumby.sites import add_site

FIELDS = ["cid", "dl", "dt", "de", "dr", "ul", "sd", "sr", "en", "ev", "site", "utm_source", "x"]
ANY_TEXT = st.text(max_size=300)
URLISH = st.one_of(
    ANY_TEXT,
    st.builds(lambda path: "https://site.example/" + path, ANY_TEXT),
    st.builds(lambda q: "https://site.example/?utm_source=" + q, ANY_TEXT),
)
VALUE = st.one_of(
    ANY_TEXT, URLISH, st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers())
)
PARAMS = st.dictionaries(st.one_of(st.sampled_from(FIELDS), ANY_TEXT), VALUE, max_size=8)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALLOWED = {200, 204, 400, 413}
#: what an HTTP header can carry: latin-1 without line breaks
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255))


@pytest.fixture(autouse=True)
def site(app):
    """The fuzzed pages' host is a registered site, so that fuzzed hits reach the insert."""
    with app.app_context(), db.engine.begin() as conn:
        return add_site(conn, "site.example")


@FUZZ
@given(
    path=st.sampled_from(["/visit", "/event"]),
    params=PARAMS,
    encoding=st.sampled_from(["json", "text-json", "form", "text-form", "query"]),
    user_agent=HEADER_TEXT,
    forwarded=HEADER_TEXT,
    referer=st.one_of(HEADER_TEXT, st.builds(lambda p: "https://site.example/" + p, HEADER_TEXT)),
)
def test_structured_hits_never_get_a_500(
    app, client, path, params, encoding, user_agent, forwarded, referer
):
    app.config["PROXY_COUNT"] = 1
    headers = {"User-Agent": user_agent, "X-Forwarded-For": forwarded, "Referer": referer}
    flat = {k: "" if v is None else str(v) for k, v in params.items()}
    if encoding == "json":
        response = client.post(
            path, data=json.dumps(params), content_type="application/json", headers=headers
        )
    elif encoding == "text-json":
        response = client.post(
            path, data=json.dumps(params), content_type="text/plain", headers=headers
        )
    elif encoding == "form":
        response = client.post(path, data=flat, headers=headers)
    elif encoding == "text-form":
        from urllib.parse import urlencode

        response = client.post(
            path, data=urlencode(flat), content_type="text/plain", headers=headers
        )
    else:
        response = client.get(path, query_string=flat, headers=headers)
    assert response.status_code in ALLOWED, response.data
    if response.status_code >= 400:
        assert response.get_json()["error"]


@FUZZ
@given(
    path=st.sampled_from(["/visit", "/event"]),
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "",
            "application/octet-stream",
            "text/plain;charset=latin-1",
        ]
    ),
    query=st.binary(max_size=200),
)
def test_raw_bytes_never_get_a_500(app, client, path, body, content_type, query):
    from urllib.parse import quote_from_bytes

    response = client.post(
        path + "?" + quote_from_bytes(query, safe="=&"), data=body, content_type=content_type
    )
    assert response.status_code in ALLOWED, response.data
