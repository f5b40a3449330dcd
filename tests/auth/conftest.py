"""Fixtures for the login tests: a user, and a client that logs in through the form."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crumby import accounts

PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token of the login form in ``html``."""
    match = _TOKEN.search(html)
    assert match, "the page has no CSRF token field"
    return match.group(1)


def without_token(html: str) -> str:
    """The page with its (per-request) CSRF token blanked, to compare two answers."""
    return _TOKEN.sub('name="csrf_token" type="hidden" value=""', html)


@pytest.fixture
def alice(app: Flask) -> str:
    """A user named alice with PASSWORD; returns the name."""
    with app.app_context():
        accounts.add_user("alice", PASSWORD)
    return "alice"


@pytest.fixture
def login(client: FlaskClient) -> Callable[..., TestResponse]:
    """Log in the way a browser does: GET the form, POST it back with its token."""

    def submit(
        username: str,
        password: str,
        next: str | None = None,
        *,
        client: FlaskClient = client,
        **environ: object,
    ) -> TestResponse:
        query = {"next": next} if next is not None else {}
        form = client.get("/login", query_string=query, environ_base=dict(environ))
        assert form.status_code == 200, form.status_code
        return client.post(
            "/login",
            query_string=query,
            data={"username": username, "password": password, "csrf_token": csrf_token(form.text)},
            environ_base=dict(environ),
        )

    return submit
