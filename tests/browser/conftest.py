"""Headless Chromium (Debian's package) driven by Playwright, and live servers on loopback.

Chromium is required, not optional: a machine without it fails these tests
with a message saying how to install it (``apt-get install chromium``).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from flask import Flask, Response
from werkzeug.serving import make_server

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_executable() -> str:
    """Debian's chromium, or $CRUMBY_TEST_CHROMIUM."""
    path = os.environ.get("CRUMBY_TEST_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise pytest.UsageError(
            "browser tests need Chromium: apt-get install chromium (or set CRUMBY_TEST_CHROMIUM)"
        )
    return path


class LiveServer:
    """A WSGI app served from a background thread on 127.0.0.1 and a free port."""

    def __init__(self, app: Callable) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test app (see tests/conftest.py) served for real on loopback."""
    with LiveServer(app) as server:
        yield server


def static_site(pages: Mapping[str, str]) -> Flask:
    """A tiny site of HTML pages: the 'customer' site that embeds cmb.js."""
    site = Flask("tracked_site")

    @site.get("/", defaults={"path": ""})
    @site.get("/<path:path>")
    def page(path: str) -> Response:
        body = pages.get("/" + path)
        if body is None:
            return Response("not found", status=404)
        return Response(body, mimetype="text/html")

    return site


@pytest.fixture
def other_origin() -> Iterator[Callable[[Mapping[str, str]], LiveServer]]:
    """Serve pages from a second origin (another port), as a customer's site would be."""
    servers: list[LiveServer] = []

    def serve(pages: Mapping[str, str]) -> LiveServer:
        server = LiveServer(static_site(pages)).__enter__()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.__exit__()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable(), headless=True, args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context and page; JavaScript errors are collected in ``page.js_errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: page.js_errors.append(msg.text) if msg.type == "error" else None,
    )
    yield page
    context.close()


def screenshot(page: object, name: str) -> Path:
    """Keep a screenshot under test-artifacts/ for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


#: each selector's first element's contrast ratio against its background (0: no such element)
_CONTRAST = """
(selectors) => {
  const rgb = s => s.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = c => {
    const [r, g, b] = c.map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (!/rgba\\(.*, 0\\)$/.test(c) && c !== "transparent") return rgb(c);
    }
    return rgb(getComputedStyle(document.documentElement).backgroundColor);
  };
  return selectors.map(sel => {
    const el = document.querySelector(sel);
    if (!el) return [sel, 0];
    return [sel, Math.round(ratio(rgb(getComputedStyle(el).color), background(el)) * 10) / 10];
  });
}
"""


def contrast_ratios(page, selectors: list[str]) -> dict[str, float]:
    """WCAG contrast ratios of the text of each selector's first element, as the page shows it."""
    return dict(page.evaluate(_CONTRAST, selectors))
