"""The private goals and funnel reports, on every database, against answers computed in Python."""

from __future__ import annotations

import pytest

from crumby import accounts, clock
from crumby.extensions import db
from crumby.goals import add_funnel, add_goal
from crumby.reporting import get_query, run_query
from crumby.reporting.parameters import resolve
from tests import goal_data as gd
from tests import report_data as rd

#: ranges: the seeded one, its first day alone (sessions from the evening before must not
#: count), its last day (a session running past midnight counts), and a wider one
RANGES = [
    (gd.T0, gd.T1),
    (gd.T0, gd.T0),
    (gd.T1, gd.T1),
    (gd.T0 - rd.dt.timedelta(days=1), gd.T1 + rd.dt.timedelta(days=1)),
]


@pytest.fixture
def seeded(app):
    """The goal seed stored through the ingest pipeline under a private New York site."""
    clock.pin(app, gd.NOW)
    with app.app_context():
        seed = gd.build()
        rd.insert(seed, gd.HOST, gd.ZONE, public=False)
        with db.engine.begin() as connection:
            for goal in gd.GOALS:
                add_goal(
                    connection,
                    gd.HOST,
                    goal.name,
                    event=goal.target if goal.kind == "event" else None,
                    page=goal.target if goal.kind == "page" else None,
                )
            for name, steps in gd.FUNNELS.items():
                add_funnel(connection, gd.HOST, name, steps)
    return seed


def _approx(rows):
    return [
        [pytest.approx(v, abs=1e-3) if isinstance(v, float) else v for v in row] for row in rows
    ]


def test_the_seed_is_worth_testing_with(seeded):
    """Every funnel loses visitors somewhere, and taking order or sessions lightly would differ."""
    checkout = gd.expect_funnel(seeded, gd.FUNNELS["checkout"])
    assert checkout[0][2] > checkout[1][2] > checkout[2][2] > 0
    assert gd.expect_funnel(seeded, gd.FUNNELS["back-again"])[2][2] > 0
    # order matters: Signup before Pricing is not Pricing before Signup
    assert gd.expect_funnel(seeded, ["Signup", "Pricing"]) != gd.expect_funnel(
        seeded, ["Pricing", "Signup"]
    )
    # local days matter: the same range in UTC counts other sessions
    assert gd.expect_funnel(seeded, gd.FUNNELS["checkout"], zone="UTC") != checkout
    assert gd.expect_goals(seeded, gd.GOALS, zone="UTC") != gd.expect_goals(seeded, gd.GOALS)
    # an event in the same second as a view, and events outside every session, are there
    times = {(r["cid"], r["datetime"]) for r in seeded.visits}
    assert any((e["cid"], e["datetime"]) in times for e in seeded.events)
    sessions = gd.python_sessions(seeded)
    spans = [(s[0]["cid"], s[0]["datetime"], s[-1]["datetime"]) for s in sessions]
    outside = [
        e
        for e in seeded.events
        if not any(
            c == e["cid"] and a <= e["datetime"] < b + rd.dt.timedelta(minutes=30)
            for c, a, b in spans
        )
    ]
    assert len(outside) > 3
    assert max(len([s for s in sessions if s[0]["cid"] == c]) for c, _a, _b in spans) > 2


def test_goals_match_python(app, seeded):
    with app.app_context():
        query = get_query("private", "goals")
        for t0, t1 in RANGES:
            result = run_query(query, seeded.site, t0, t1, use_cache=False)
            assert result.columns == ["goal", "visitors", "conversions", "conversion_rate"]
            assert result.data == _approx(gd.expect_goals(seeded, gd.GOALS, t0, t1)), (t0, t1)
            assert all(0 <= row[3] <= 1 for row in result.data)


@pytest.mark.parametrize("funnel", sorted(gd.FUNNELS))
def test_funnel_matches_python(app, seeded, funnel):
    with app.app_context():
        query = get_query("private", "funnel")
        params = resolve(query, seeded.site, {"funnel": funnel})
        for t0, t1 in RANGES:
            result = run_query(query, seeded.site, t0, t1, use_cache=False, params=params)
            assert result.columns == ["step", "goal", "visitors", "conversion_rate", "dropoff"]
            expected = gd.expect_funnel(seeded, gd.FUNNELS[funnel], t0, t1)
            assert result.data == _approx(expected), f"{funnel} {t0}..{t1}"


def test_the_edge_sessions_count_on_the_day_they_start(app, seeded):
    """A session from the evening before the range does not count; one from its last does."""
    edge = {s[0]["cid"] for s in gd.python_sessions(seeded) if s[0]["cid"].startswith("edge")}
    assert edge == {"edge-a", "edge-b", "edge-c"}
    first = gd.expect_funnel(seeded, gd.FUNNELS["checkout"], gd.T1, gd.T1)
    without_b = gd.expect_funnel(
        rd.Seed(
            visits=[r for r in seeded.visits if r["cid"] != "edge-b"],
            events=[r for r in seeded.events if r["cid"] != "edge-b"],
        ),
        gd.FUNNELS["checkout"],
        gd.T1,
        gd.T1,
    )
    assert first[2][2] == without_b[2][2] + 1


# ---- through the API ---------------------------------------------------------------------------


def _login(app, client) -> None:
    with app.app_context():
        accounts.add_user("owner", "correct horse")
    with client.session_transaction() as session:
        with app.app_context():
            user = accounts.find_user("owner")
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def test_the_reports_are_private(app, client, seeded):
    for url in ("/api/private/goals", "/api/private/funnel?funnel=checkout"):
        answer = client.get(f"{url}{'&' if '?' in url else '?'}site={gd.HOST}")
        assert answer.status_code == 401, url
        assert answer.is_json and "error" in answer.json


def test_the_api_answers_both_reports(app, client, seeded):
    _login(app, client)
    window = f"site={gd.HOST}&from={gd.T0}&to={gd.T1}"
    goals = client.get(f"/api/private/goals?{window}")
    assert goals.status_code == 200, goals.json
    assert goals.json["columns"] == ["goal", "visitors", "conversions", "conversion_rate"]
    assert goals.json["data"] == _approx(gd.expect_goals(seeded, gd.GOALS))
    funnel = client.get(f"/api/private/funnel?{window}&funnel=checkout")
    assert funnel.status_code == 200, funnel.json
    assert funnel.json["data"] == _approx(gd.expect_funnel(seeded, gd.FUNNELS["checkout"]))
    assert funnel.json["parameters"] == {"funnel": "checkout"}
    csv = client.get(f"/api/private/funnel?{window}&funnel=checkout&format=csv")
    assert csv.text.splitlines()[0] == "step,goal,visitors,conversion_rate,dropoff"


@pytest.mark.parametrize(
    "query, status, fragment",
    [
        ("", 400, "funnel="),
        ("&funnel=", 400, "funnel="),
        ("&funnel=nope", 404, "no funnel named"),
        ("&funnel=" + "x" * 1001, 400, "too long"),
        ("&funnel=%00", 404, "no funnel named"),
        ("&funnel=checkout%27%3B--", 404, "no funnel named"),
    ],
)
def test_a_missing_or_unknown_funnel_is_a_json_error(app, client, seeded, query, status, fragment):
    _login(app, client)
    answer = client.get(f"/api/private/funnel?site={gd.HOST}{query}")
    assert answer.status_code == status
    assert answer.is_json and fragment in answer.json["error"]


def test_a_site_without_goals_answers_no_rows(app, client):
    _login(app, client)
    with app.app_context():
        rd.insert(rd.Seed(visits=[gd._view("x", gd.NOW, "/pricing")]), "empty.example")
    answer = client.get("/api/private/goals?site=empty.example")
    assert answer.status_code == 200 and answer.json["data"] == []


def test_one_sites_goals_never_show_in_anothers(app, client, seeded):
    _login(app, client)
    with app.app_context():
        rd.insert(rd.Seed(visits=[gd._view("x", gd.NOW, "/pricing")]), "other.example")
        with db.engine.begin() as connection:
            add_goal(connection, "other.example", "Theirs", page="/pricing")
    mine = client.get(f"/api/private/goals?site={gd.HOST}&days=365").json["data"]
    theirs = client.get("/api/private/goals?site=other.example&days=365").json["data"]
    assert "Theirs" not in [r[0] for r in mine]
    assert theirs == [["Theirs", 1, 1, 1]]
    assert client.get("/api/private/funnel?site=other.example&funnel=checkout").status_code == 404
