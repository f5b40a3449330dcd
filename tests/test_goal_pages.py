"""Goals and funnels in the web pages: a logged-in user adds, lists and removes them (CSRF-guarded),
and the dashboard shows the goals card and a funnel chart to logged-in users only."""

from __future__ import annotations

import re

import pytest

from crumby import accounts
from crumby.extensions import db
from crumby.goals import list_funnels, list_goals
from crumby.sites import add_site, find_site
from tests.auth.conftest import csrf_token

HOST = "shop.example"


@pytest.fixture
def site(app):
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, HOST)
    return HOST


def _login(app, client) -> None:
    with app.app_context():
        accounts.add_user("owner", "correct horse")
    form = client.get("/login")
    answer = client.post(
        "/login",
        data={
            "username": "owner",
            "password": "correct horse",
            "csrf_token": csrf_token(form.text),
        },
    )
    assert answer.status_code == 302


def _state(app):
    with app.app_context(), db.engine.connect() as connection:
        found = find_site(connection, HOST)
        goals = [(g.name, g.kind, g.target) for g in list_goals(connection, found)]
        funnels = [f.describe() for f in list_funnels(connection, found)]
    return goals, funnels


def _post(client, url, data):
    page = client.get(f"/sites/{HOST}/goals")
    return client.post(url, data={**data, "csrf_token": csrf_token(page.text)})


def test_the_goals_page_needs_a_login(app, client, site):
    answer = client.get(f"/sites/{HOST}/goals")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    for url in (f"/sites/{HOST}/goals", f"/sites/{HOST}/funnels", f"/sites/{HOST}/goals/delete"):
        assert client.post(url, data={"name": "x", "kind": "event", "target": "e"}).status_code in (
            302,
            400,
        )
    assert _state(app) == ([], [])


def test_a_user_adds_lists_and_removes_goals_and_funnels(app, client, site):
    _login(app, client)
    page = client.get(f"/sites/{HOST}/goals")
    assert page.status_code == 200 and "Add a goal" in page.text
    added = _post(
        client, f"/sites/{HOST}/goals", {"name": "Pricing", "kind": "page", "target": "/pricing"}
    )
    assert added.status_code == 302
    _post(
        client, f"/sites/{HOST}/goals", {"name": "Signed up", "kind": "event", "target": "signup"}
    )
    made = _post(
        client,
        f"/sites/{HOST}/funnels",
        {"name": "checkout", "step_1": "Pricing", "step_2": "", "step_3": "Signed up"},
    )
    assert made.status_code == 302
    assert _state(app) == (
        [("Pricing", "page", "/pricing"), ("Signed up", "event", "signup")],
        ["checkout\tPricing > Signed up"],
    )
    listed = client.get(f"/sites/{HOST}/goals").text
    assert 'data-goal="Pricing"' in listed and 'data-funnel="checkout"' in listed
    # a goal in a funnel stays, with the reason on the page
    refused = _post(client, f"/sites/{HOST}/goals/delete", {"name": "Pricing"})
    assert refused.status_code == 400 and "step of the funnel" in refused.text
    assert _post(client, f"/sites/{HOST}/funnels/delete", {"name": "checkout"}).status_code == 302
    assert _post(client, f"/sites/{HOST}/goals/delete", {"name": "Pricing"}).status_code == 302
    assert _state(app) == ([("Signed up", "event", "signup")], [])


@pytest.mark.parametrize(
    "url, data, status, fragment",
    [
        ("goals", {"name": "", "kind": "event", "target": "e"}, 400, "Name the goal"),
        ("goals", {"name": "G", "kind": "page", "target": "pricing"}, 400, "starting with /"),
        ("goals", {"name": "G", "kind": "weird", "target": "e"}, 400, "Not a valid choice"),
        ("goals", {"name": "Taken", "kind": "event", "target": "e"}, 400, "already has a goal"),
        ("goals", {"name": "x" * 101, "kind": "event", "target": "e"}, 400, "100"),
        ("funnels", {"name": "F", "step_1": "Taken"}, 400, "2 to 8 steps"),
        ("funnels", {"name": "F", "step_1": "Taken", "step_2": "Nope"}, 404, "no goal named"),
        ("goals/delete", {"name": "Nope"}, 404, "no goal named"),
        ("funnels/delete", {"name": "Nope"}, 404, "no funnel named"),
    ],
)
def test_bad_form_input_is_refused_with_the_reason(app, client, site, url, data, status, fragment):
    _login(app, client)
    _post(client, f"/sites/{HOST}/goals", {"name": "Taken", "kind": "event", "target": "t"})
    before = _state(app)
    answer = _post(client, f"/sites/{HOST}/{url}", data)
    assert answer.status_code == status
    assert fragment in answer.text.replace("&#39;", "'")
    assert _state(app) == before


def test_forms_without_a_csrf_token_change_nothing(app, client, site):
    _login(app, client)
    for url, data in (
        ("goals", {"name": "G", "kind": "event", "target": "e"}),
        ("funnels", {"name": "F", "step_1": "G", "step_2": "G"}),
        ("goals/delete", {"name": "G"}),
    ):
        assert client.post(f"/sites/{HOST}/{url}", data=data).status_code == 400
    assert _state(app) == ([], [])


def test_an_unknown_site_is_404(app, client, site):
    _login(app, client)
    assert client.get("/sites/nowhere.example/goals").status_code == 404


def test_the_dashboard_shows_goals_and_the_funnel_to_logged_in_users(app, client, site):
    page = client.get(f"/?site={HOST}")
    assert page.status_code == 302  # a private site: to the login
    _login(app, client)
    html = client.get(f"/?site={HOST}").text
    assert 'id="report-private-goals"' in html
    # no funnel yet: the card says how to add one and asks the API for nothing
    card = re.search(r'<section[^>]*id="report-private-funnel".*?</section>', html, re.S).group(0)
    assert 'data-idle="true"' in card and f"/sites/{HOST}/goals" in card
    _post(client, f"/sites/{HOST}/goals", {"name": "A", "kind": "page", "target": "/a"})
    _post(client, f"/sites/{HOST}/goals", {"name": "B", "kind": "event", "target": "b"})
    _post(client, f"/sites/{HOST}/funnels", {"name": "ab", "step_1": "A", "step_2": "B"})
    _post(client, f"/sites/{HOST}/funnels", {"name": "ba", "step_1": "B", "step_2": "A"})
    html = client.get(f"/?site={HOST}&funnel=ba").text
    card = re.search(r'<section[^>]*id="report-private-funnel".*?</section>', html, re.S).group(0)
    assert "data-idle" not in card and "funnel=ba" in card
    assert '<option value="ab">' in card and '<option value="ba" selected>' in card
    report = client.get(f"/reports/private/funnel?site={HOST}&funnel=ab")
    assert report.status_code == 200 and "funnel=ab" in report.text
    assert ":funnel_target_1" in report.text  # the SQL, values bound


def test_a_public_sites_dashboard_shows_no_goals_to_anyone_else(app, client):
    with app.app_context(), db.engine.begin() as connection:
        add_site(connection, "open.example", public=True)
    html = client.get("/?site=open.example").text
    assert "report-private-goals" not in html and "report-private-funnel" not in html
