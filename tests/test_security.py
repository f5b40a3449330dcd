"""Every HTML page carries the security headers, and no template needs inline code."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

import crumby
from crumby.extensions import db
from crumby.security import CONTENT_SECURITY_POLICY
from crumby.sites import add_site

TEMPLATES = Path(crumby.__file__).parent / "templates"
EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def test_the_policy_is_the_agreed_one():
    assert CONTENT_SECURITY_POLICY == EXPECTED_CSP


@pytest.mark.parametrize(
    "path, status",
    [
        ("/", 200),  # no site yet: the welcome page
        ("/?site=shop.example", 200),  # a site's dashboard
        ("/reports/public/visits?site=shop.example", 200),
        ("/login", 200),
        ("/no-such-page", 404),
    ],
)
def test_html_pages_carry_the_security_headers(app, client, path, status):
    if "site=" in path:
        with app.app_context(), db.engine.begin() as conn:
            add_site(conn, "shop.example", public=True)
    response = client.get(path)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_json_answers_are_nosniff_without_the_page_policy(client):
    response = client.get("/api/no-such-endpoint")
    assert response.is_json
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers


def test_a_view_may_set_its_own_policy(app, client):
    @app.get("/_own_policy")
    def own() -> tuple[str, dict[str, str]]:
        return "<p>hi</p>", {"Content-Security-Policy": "default-src 'none'"}

    assert client.get("/_own_policy").headers["Content-Security-Policy"] == "default-src 'none'"


class InlineCodeFinder(HTMLParser):
    """Collects what the policy would block: inline scripts, styles and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower() for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> block")
        if "style" in names:
            self.found.append(f'style="" on <{tag}>')
        self.found += [f"{name}= handler on <{tag}>" for name in names if name.startswith("on")]
        for name, value in attrs:
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"javascript: URL on <{tag}>")


TEMPLATE_FILES = sorted(TEMPLATES.rglob("*.html"))


def test_there_are_templates_to_check():
    assert any(p.name == "login.html" for p in TEMPLATE_FILES)


@pytest.mark.parametrize("template", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_hold_no_inline_script_or_style(template):
    finder = InlineCodeFinder()
    finder.feed(template.read_text(encoding="utf-8"))
    assert finder.found == []


def test_the_inline_code_finder_finds_inline_code():
    finder = InlineCodeFinder()
    finder.feed(
        '<script>x()</script><style>p{}</style><p style="color:red" onclick="x()">'
        '<a href="javascript:x()">x</a><script src="/static/ok.js"></script>'
    )
    assert len(finder.found) == 5
