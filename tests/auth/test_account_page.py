"""The account page: change the password, make, list and revoke API tokens, in the browser's
forms (CSRF tokens, clear errors, never a 500), with the same logic as the command line."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from crumby import accounts
from crumby.extensions import db
from crumby.models import ApiToken
from crumby.sites import add_site
from tests.auth.conftest import PASSWORD, csrf_token

NEW_TOKEN = re.compile(r"cmb_[A-Za-z0-9_-]{43}")


@pytest.fixture
def logged_in(client, alice, login):
    assert login(alice, PASSWORD).status_code == 302
    return client


def page_token(client) -> str:
    return csrf_token(client.get("/account").text)


def token_rows(app) -> list[tuple]:
    with app.app_context():
        return [
            tuple(r)
            for r in db.session.execute(
                sa.select(ApiToken.id, ApiToken.site_id, ApiToken.ingest_only).order_by(ApiToken.id)
            )
        ]


def change(client, current: str, new: str, confirm: str | None = None, **extra):
    data = {"current": current, "new": new, "confirm": new if confirm is None else confirm}
    form = {"csrf_token": page_token(client), **data, **extra}
    return client.post("/account/password", data=form)


def test_the_account_page_and_its_forms_need_a_login(app, client, alice):
    answer = client.get("/account")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    for path in ("/account/password", "/account/tokens", "/account/tokens/1/revoke"):
        answer = client.post(path, data={"current": PASSWORD, "new": "x", "confirm": "x"})
        assert answer.status_code in (302, 400), path
    assert token_rows(app) == []
    with app.app_context():
        assert accounts.check_login(alice, PASSWORD) is not None


def test_the_page_shows_the_forms_with_csrf_tokens(logged_in):
    html = logged_in.get("/account").text
    assert 'id="password-form"' in html and 'id="token-form"' in html
    assert html.count('name="csrf_token"') >= 2
    assert 'id="no-tokens"' in html
    assert 'autocomplete="current-password"' in html and 'autocomplete="new-password"' in html


def test_changing_the_password_needs_the_current_one(app, client, logged_in, alice, login):
    answer = change(logged_in, PASSWORD, "a new secret")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/account")
    assert "Your password has been changed." in logged_in.get("/account").text
    logged_in.get("/logout")
    assert login(alice, PASSWORD).status_code == 401
    assert login(alice, "a new secret").status_code == 302


def test_a_password_change_logs_out_every_other_session(app, alice, login):
    """A stolen or forgotten session (another browser) ends when the password changes;
    the session that changed it goes on."""
    here, elsewhere = app.test_client(), app.test_client()
    for client in (here, elsewhere):
        assert login(alice, PASSWORD, client=client).status_code == 302
        assert client.get("/account").status_code == 200
    assert change(here, PASSWORD, "a new secret").status_code == 302
    assert here.get("/account").status_code == 200
    gone = elsewhere.get("/account")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]
    # logging in again with the new password opens it again
    assert login(alice, "a new secret", client=elsewhere).status_code == 302
    assert elsewhere.get("/account").status_code == 200


@pytest.mark.parametrize(
    "current, new, confirm, message",
    [
        ("wrong password", "a new secret", None, "The current password is not right."),
        (PASSWORD, "a new secret", "another secret", "The two new passwords are not the same."),
        (PASSWORD, "", "", "Enter a new password."),
        ("", "a new secret", None, "Enter your current password."),
        (PASSWORD, "x" * 1025, None, "Field cannot be longer than 1024 characters."),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(
    app, logged_in, alice, current, new, confirm, message
):
    answer = change(logged_in, current, new, confirm)
    assert answer.status_code == 400
    assert 'role="alert"' in answer.text and message in answer.text
    with app.app_context():
        assert accounts.check_login(alice, PASSWORD) is not None


def test_a_password_change_without_its_csrf_token_is_refused(app, logged_in, alice):
    answer = logged_in.post(
        "/account/password", data={"current": PASSWORD, "new": "n", "confirm": "n"}
    )
    assert answer.status_code == 400 and "CSRF" in answer.text
    answer = change(logged_in, PASSWORD, "n", csrf_token="forged")
    assert answer.status_code == 400
    with app.app_context():
        assert accounts.check_login(alice, PASSWORD) is not None


def test_guessing_the_current_password_is_throttled_like_logins(app, logged_in, alice):
    statuses = [change(logged_in, f"guess {i}", "n").status_code for i in range(6)]
    assert statuses == [400] * 5 + [429]
    # even the right password waits now
    answer = change(logged_in, PASSWORD, "n")
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    assert "Too many wrong passwords" in answer.text
    with app.app_context():
        assert accounts.check_login(alice, PASSWORD) is not None


def test_a_new_token_is_shown_once_and_works(app, logged_in):
    answer = logged_in.post("/account/tokens", data={"csrf_token": page_token(logged_in)})
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    (token,) = NEW_TOKEN.findall(answer.text)
    assert "it will not be shown again" in answer.text
    [(token_id, site_id, ingest_only)] = token_rows(app)
    assert (site_id, ingest_only) == (None, False)
    # listed, but never shown again
    listing = logged_in.get("/account").text
    assert f'data-token="{token_id}"' in listing and "reads and sends, every site" in listing
    assert token not in listing and not NEW_TOKEN.search(listing)
    # it is a real API token: it reads private reports without the session
    fresh = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert fresh.get("/api/private", headers=headers).status_code == 200


def test_a_token_can_be_limited_to_a_site_and_to_sending(app, logged_in):
    with app.app_context(), db.engine.begin() as connection:
        site = add_site(connection, "shop.example")
    page = logged_in.get("/account").text
    assert '<option value="shop.example">shop.example</option>' in page
    answer = logged_in.post(
        "/account/tokens",
        data={"csrf_token": csrf_token(page), "site": "shop.example", "ingest_only": "y"},
    )
    assert answer.status_code == 200 and NEW_TOKEN.search(answer.text)
    assert token_rows(app) == [(token_rows(app)[0][0], site.id, True)]
    assert "sends data only, site shop.example" in logged_in.get("/account").text


@pytest.mark.parametrize(
    "data, message",
    [
        ({"site": "nowhere.example"}, "Not a valid choice"),
        ({"csrf_token": "forged"}, "CSRF"),
        ({"csrf_token": None}, "CSRF"),
    ],
)
def test_a_refused_token_form_makes_no_token(app, logged_in, data, message):
    form = {"csrf_token": page_token(logged_in), **data}
    answer = logged_in.post("/account/tokens", data={k: v for k, v in form.items() if v})
    assert answer.status_code == 400
    assert message in answer.text and not NEW_TOKEN.search(answer.text)
    assert token_rows(app) == []


def test_a_site_deleted_while_the_form_was_open_is_a_clear_400(app, logged_in, monkeypatch):
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, "gone.example")
    page = logged_in.get("/account").text

    def site_gone(*_args, **_kwargs):
        raise accounts.AccountError("no such site: gone.example (crumby sites lists them)")

    monkeypatch.setattr(accounts, "create_token", site_gone)
    answer = logged_in.post(
        "/account/tokens", data={"csrf_token": csrf_token(page), "site": "gone.example"}
    )
    assert answer.status_code == 400 and "no such site: gone.example" in answer.text


def test_revoking_a_token_stops_it_at_once(app, logged_in, alice):
    with app.app_context():
        kept = accounts.create_token(alice)  # made on the command line's path
        revoked = accounts.create_token(alice)
    listing = logged_in.get("/account").text
    ids = [row[0] for row in token_rows(app)]
    assert all(f'data-token="{i}"' in listing for i in ids)
    answer = logged_in.post(
        f"/account/tokens/{ids[1]}/revoke", data={"csrf_token": csrf_token(listing)}
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/account#tokens")
    assert [row[0] for row in token_rows(app)] == [ids[0]]
    fresh = app.test_client()
    for token, status in ((revoked, 401), (kept, 200)):
        answer = fresh.get("/api/private", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == status
    assert "Revoked the API token" in logged_in.get("/account").text


def test_a_token_that_is_not_yours_or_is_gone_is_404_and_stays(app, logged_in):
    with app.app_context():
        accounts.add_user("bob", "bobs password")
        accounts.create_token("bob")
    [(bobs, _, _)] = token_rows(app)
    token = page_token(logged_in)
    for token_id in (bobs, bobs + 1000):
        answer = logged_in.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": token})
        assert answer.status_code == 404 and "No such API token" in answer.text
    for token_id in (2**31, 99999999999999999999):  # past any database's integer: no 500
        answer = logged_in.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": token})
        assert answer.status_code == 404
    assert len(token_rows(app)) == 1
    answer = logged_in.post(f"/account/tokens/{bobs}/revoke", data={})
    assert answer.status_code == 400
    assert len(token_rows(app)) == 1


def test_a_token_revoked_on_the_page_is_gone_for_the_command_line_too(app, logged_in, alice):
    with app.app_context():
        accounts.create_token(alice)
        [info] = accounts.list_tokens(alice)
    logged_in.post(f"/account/tokens/{info.id}/revoke", data={"csrf_token": page_token(logged_in)})
    with app.app_context():
        assert accounts.list_tokens(alice) == []
        with pytest.raises(accounts.AccountError, match="no such API token"):
            accounts.revoke_token(alice, info.id)
        with pytest.raises(accounts.AccountError, match="no such user"):
            accounts.list_tokens("nobody")
