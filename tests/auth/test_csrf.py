"""Every form needs its CSRF token; the tracker's hits and token-bearing scripts do not."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Blueprint, Flask

import crumby
from crumby import accounts, csrf
from tests.auth.conftest import PASSWORD, csrf_token


@pytest.fixture
def form_app(app: Flask) -> Flask:
    """The app with a plain POST endpoint and a decorated exempt one."""
    bp = Blueprint("csrf_test", __name__)

    @bp.post("/_csrf_test/form")
    def form() -> dict:
        return {"saved": True}

    @bp.post("/_csrf_test/hook")
    @csrf.exempt
    def hook() -> dict:
        return {"received": True}

    app.register_blueprint(bp)
    return app


def test_login_without_a_token_is_a_400_with_a_clear_message(client, alice):
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.text
    assert "please try again" in response.text
    assert 'name="csrf_token"' in response.text  # a fresh form to try again with
    assert client.get("/account").status_code == 302


def test_login_with_a_forged_token_is_a_400(client, alice):
    client.get("/login")
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert "The CSRF token is invalid." in response.text
    assert client.get("/account").status_code == 302


def test_a_token_from_another_session_does_not_count(app, client, alice):
    other = app.test_client()
    token = csrf_token(other.get("/login").text)
    client.get("/login")
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 400
    assert "The CSRF tokens do not match." in response.text


def test_post_logout_needs_no_token_as_get_needs_none(client, alice, login):
    """Logging someone out is possible by GET (the contract), so a token protects nothing."""
    login("alice", PASSWORD)
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/account").status_code == 302


def test_other_forms_need_the_token_too(form_app, client):
    response = client.post("/_csrf_test/form", data={"x": "1"})
    assert response.status_code == 400
    assert "CSRF" in response.text


def test_json_callers_get_the_csrf_error_as_json(form_app, client):
    response = client.post(
        "/_csrf_test/form", json={"x": 1}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("CSRF check failed: The CSRF token is missing.")


def test_the_exempt_decorator_lets_cross_site_posts_in(form_app, client):
    assert client.post("/_csrf_test/hook", data={"x": "1"}).get_json() == {"received": True}


def test_a_valid_bearer_token_needs_no_csrf_token(form_app, client, alice):
    with form_app.app_context():
        token = accounts.create_token("alice")
    ok = client.post("/_csrf_test/form", headers={"Authorization": f"Bearer {token}"})
    assert ok.get_json() == {"saved": True}
    forged = client.post("/_csrf_test/form", headers={"Authorization": "Bearer cmb_forged"})
    assert forged.status_code == 400


@pytest.mark.parametrize("path", ["/visit", "/event", "/visit/", "/event/"])
def test_tracker_hits_are_exempt_by_path(app, path):
    """They hold even before the tracking blueprint is registered, and after."""
    with app.test_request_context(path, method="POST"):
        assert csrf.is_exempt()


@pytest.mark.parametrize("path", ["/login", "/account", "/visits", "/api/private"])
def test_other_paths_are_not_exempt(app, path):
    with app.test_request_context(path, method="POST"):
        assert not csrf.is_exempt()


def test_posting_to_an_unknown_path_is_a_404_not_a_csrf_error(client):
    assert client.post("/no-such-page").status_code == 404


def test_the_tracking_blueprint_is_exempt_by_name():
    """A bare app with only CSRF protection and a blueprint called 'tracking'."""
    app = Flask("csrf_unit", template_folder=str(Path(crumby.__file__).parent / "templates"))
    app.config.update(SECRET_KEY="unit", TESTING=True)
    csrf.init_app(app)
    tracking = Blueprint("tracking", __name__)

    @tracking.post("/hit")
    def hit() -> str:
        return "recorded"

    other = Blueprint("other", __name__)

    @other.post("/form")
    def form() -> str:
        return "saved"

    app.register_blueprint(tracking)
    app.register_blueprint(other)
    client = app.test_client()
    assert client.post("/hit").text == "recorded"
    assert client.post("/form").status_code == 400
