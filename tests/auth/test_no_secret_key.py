"""Without SECRET_KEY nobody can log in, the login page says why, and the rest still works."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from crumby import accounts


@pytest.fixture
def keyless(app: Flask, alice: str) -> Flask:
    """The test app as a fresh install would run before ``crumby init``."""
    app.config["SECRET_KEY"] = None
    return app


def test_the_login_page_explains_and_answers_503(keyless, client):
    response = client.get("/login")
    assert response.status_code == 503
    assert "Logging in is disabled because this Crumby has no SECRET_KEY" in response.text
    assert "crumby init" in response.text
    assert "<form" not in response.text


def test_posting_the_login_form_is_refused_the_same_way(keyless, client):
    response = client.post("/login", data={"username": "alice", "password": "x"})
    assert response.status_code == 503
    assert "no SECRET_KEY" in response.text
    assert "Set-Cookie" not in response.headers


def test_the_reason_is_logged_once(keyless, client, caplog):
    with caplog.at_level(logging.WARNING):
        client.get("/login")
        client.get("/login")
        client.post("/login")
    warnings = [r for r in caplog.records if "SECRET_KEY is not set" in r.getMessage()]
    assert len(warnings) == 1


def test_the_dashboard_still_works(keyless, client):
    response = client.get("/")
    assert response.status_code == 200
    assert "Crumby" in response.text


def test_protected_pages_redirect_and_logout_does_not_crash(keyless, client):
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/account"
    assert client.get("/logout").status_code == 302
    assert client.post("/logout").status_code == 302


def test_bearer_tokens_still_work(keyless, client):
    with keyless.app_context():
        token = accounts.create_token("alice")
    page = client.get("/account", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200
    assert ">alice<" in page.text


def test_other_forms_answer_503_with_the_reason_instead_of_crashing(keyless, client):
    from flask import Blueprint

    bp = Blueprint("keyless_form", __name__)

    @bp.post("/_keyless/form")
    def form() -> str:
        return "saved"

    keyless.register_blueprint(bp)
    response = client.post("/_keyless/form", data={"x": "1"})
    assert response.status_code == 503
    assert "SECRET_KEY is not set" in response.text
