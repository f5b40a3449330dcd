"""After logging in, ``next`` leads only to a path on this host, whatever tricks it holds."""

from __future__ import annotations

import pytest

from crumby.auth.redirects import safe_next
from tests.auth.conftest import PASSWORD

HOST = "crumby.example"

#: each of these must never leave the login anywhere but the dashboard
BYPASSES = [
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "http:evil.example",
    "https:/evil.example",
    "http://evil.example",
    "https://evil.example/path",
    "HTTP://evil.example",
    "//evil.example/%2F..",
    "/%2F%2Fevil.example",
    "/%2f%2fevil.example",
    "/%252F%252Fevil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "%2F%2Fevil.example",
    "/%09/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/ /evil.example",
    "/\x00/evil.example",
    "/\x0b/evil.example",
    "/\u3000/evil.example",
    "/%E3%80%80/evil.example",
    "/%0d%0aLocation:%20http://evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "@evil.example",
    f"http://{HOST}@evil.example/",
    f"http://evil.example#@{HOST}",
    f"http://evil.example\\@{HOST}/",
    f"//{HOST}@evil.example",
    f"ftp://{HOST}/",
    "/" + "a" * 3000,
]

SAME_HOST = [
    ("/", "/"),
    ("/account", "/account"),
    ("/reports/public/visits?days=7", "/reports/public/visits?days=7"),
    ("/reports/public/visits?from=2026-01-01&to=2026-01-31", None),
    ("/search?q=a%20b", "/search?q=a%20b"),
    ("/a/b/../c", "/a/b/../c"),
    (f"http://{HOST}/account?x=1", "/account?x=1"),
    (f"https://{HOST}/account", "/account"),
]


@pytest.mark.parametrize("target", BYPASSES)
def test_next_refuses_anything_that_could_leave_the_host(target):
    assert safe_next(target, HOST) is None


@pytest.mark.parametrize("target, expected", SAME_HOST)
def test_next_keeps_paths_on_this_host(target, expected):
    assert safe_next(target, HOST) == (expected or target)


def test_next_refuses_non_strings_and_empty():
    assert safe_next(None, HOST) is None
    assert safe_next("", HOST) is None
    assert safe_next(["/account"], HOST) is None
    assert safe_next("http:///account", "") is None


@pytest.mark.parametrize(
    "target",
    ["//evil", "/\\evil", "https:evil", "http://evil", "/%2F%2Fevil", "/\t/evil", "javascript:x"],
)
def test_logging_in_with_a_hostile_next_lands_on_the_dashboard(client, alice, login, target):
    response = login("alice", PASSWORD, next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    # the form does not even carry the hostile value along
    form = client.get("/login", query_string={"next": target})
    assert "evil" not in form.text and "javascript" not in form.text


def test_logging_in_with_a_hostile_next_in_the_form_action_is_dropped(client, target="//evil"):
    page = client.get("/login", query_string={"next": target})
    assert 'action="/login"' in page.text
    assert "evil" not in page.text


def test_logging_in_with_a_same_host_url_follows_it(client, alice, login):
    response = login("alice", PASSWORD, next="http://localhost/account")
    assert response.headers["Location"] == "/account"
