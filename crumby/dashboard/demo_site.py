"""The demo mode's sample site: a few pages that embed Crumby's own cmb.auto.js.

Clicking around them records visits and events in the demo database, so a new
user sees the tracker and the dashboard work together: a button sends an event
with ``cmb.event``, the menu is a file to download, the map is a link to another
site, and an unknown page is the site's "not found" page (``data-404``), the
automatic events of cmb.auto.js. Served only when the DEMO setting is on
(``crumby demo`` turns it on).
"""

from __future__ import annotations

from flask import Response, abort, current_app, render_template

from crumby.dashboard import bp

PAGES = {
    "": ("Example Bakery – fresh bread every morning", "Fresh bread every morning."),
    "menu": ("Menu · Example Bakery", "Sourdough, rye, croissants and cakes."),
    "blog": ("How to keep a sourdough starter alive · Example Bakery", "Feed it daily."),
    "order": ("Order online · Example Bakery", "Pick up tomorrow from 7 am."),
}


#: the "not found" page's title and text
NOT_FOUND = ("Page not found · Example Bakery", "This page is gone. Try the menu.")
#: a one-page PDF of the menu, small enough to keep here
MENU_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@bp.get("/demo/", defaults={"page": ""})
@bp.get("/demo/<page>")
def demo_page(page: str) -> tuple[str, int]:
    """One page of the sample site, or its "not found" page; 404 unless in demo mode."""
    if not current_app.config.get("DEMO"):
        abort(404)
    found = page in PAGES
    title, text = PAGES[page] if found else NOT_FOUND
    from crumby.demo import MAP, SITE_HOST

    html = render_template(
        "dashboard/demo.html",
        page=page,
        title=title,
        text=text,
        pages=PAGES,
        not_found=not found,
        map_url=MAP,
        # the page is served from Crumby's own host: data-site files its hits under the demo site
        demo_site=SITE_HOST,
    )
    return html, 200 if found else 404


@bp.get("/demo/menu.pdf")
def demo_menu() -> Response:
    """The menu to download (cmb.auto.js counts the click as a ``download`` event)."""
    if not current_app.config.get("DEMO"):
        abort(404)
    return Response(MENU_PDF, mimetype="application/pdf")
