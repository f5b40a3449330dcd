"""The app factory serves pages and answers errors as JSON or HTML."""

from __future__ import annotations

from crumby import create_app
from crumby.extensions import db
from crumby.sites import add_site


def test_index_answers_on_a_fresh_database(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'fresh.db'}"})
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert b"Crumby" in response.data
    assert (tmp_path / "fresh.db").exists()


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/does-not-exist")
    assert response.status_code == 404
    assert response.is_json and "error" in response.get_json()


def test_unknown_page_is_html_404(client):
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert b"404" in response.data


def test_unreachable_database_is_503_not_a_traceback(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:////nonexistent-dir/x/crumby.db"})
    response = app.test_client().get("/api/anything")
    assert response.status_code == 503
    assert response.get_json() == {"error": "database unavailable"}


def test_doubled_or_encoded_slashes_are_not_found_never_redirected(client):
    for path in (
        "/api/public/%2Fvisits",
        "/api/public//visits",
        "/api//public",
        "/api/private/%2Fevents",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.is_json and "error" in response.get_json()
    page = client.get("/reports/public/%2Fvisits", headers={"Accept": "text/html"})
    assert page.status_code == 404


def test_every_report_has_its_chart_element_in_the_served_html(app, client):
    """Before any script runs, each report section already holds an <svg> chart element."""
    with app.app_context(), db.engine.begin() as conn:
        add_site(conn, "shop.example", public=True)
    html = client.get("/").get_data(as_text=True)
    assert 'data-site="shop.example"' in html  # the site's dashboard, not the welcome page
    sections = html.count('<section class="report')
    assert sections >= 10
    assert html.count('<svg class="chart-skeleton"') == sections
