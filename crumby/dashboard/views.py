"""Dashboard views: thin, they render templates that read the JSON API."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from crumby import __version__
from crumby.dashboard import bp
from crumby.extensions import db
from crumby.models import Event, Visit


@bp.get("/")
def index() -> str:
    """The dashboard's front page."""
    visits = db.session.scalar(select(func.count()).select_from(Visit))
    events = db.session.scalar(select(func.count()).select_from(Event))
    return render_template(
        "dashboard/index.html", visits=visits, events=events, version=__version__
    )
