"""The demo mode's sample site: a few pages that embed Crumby's own cmb.js.

Clicking around them records visits and events in the demo database, so a new
user sees the tracker and the dashboard work together. Served only when the
DEMO setting is on (``crumby demo`` turns it on).
"""

from __future__ import annotations

from flask import abort, current_app, render_template

from crumby.dashboard import bp

PAGES = {
    "": ("Example Bakery – fresh bread every morning", "Fresh bread every morning."),
    "menu": ("Menu · Example Bakery", "Sourdough, rye, croissants and cakes."),
    "blog": ("How to keep a sourdough starter alive · Example Bakery", "Feed it daily."),
    "order": ("Order online · Example Bakery", "Pick up tomorrow from 7 am."),
}


@bp.get("/demo/", defaults={"page": ""})
@bp.get("/demo/<page>")
def demo_page(page: str) -> str:
    """One page of the sample site; 404 unless Crumby runs in demo mode."""
    if not current_app.config.get("DEMO") or page not in PAGES:
        abort(404)
    title, text = PAGES[page]
    from crumby.demo import SITE_HOST

    return render_template(
        "dashboard/demo.html",
        page=page,
        title=title,
        text=text,
        pages=PAGES,
        # the page is served from Crumby's own host: data-site files its hits under the demo site
        demo_site=SITE_HOST,
    )
