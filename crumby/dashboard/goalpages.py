"""A site's goals and funnels in the web pages: list, add, remove, for a logged-in user.

The same rules as ``crumby goal`` and ``crumby funnel`` (``crumby.goals``);
every form carries a CSRF token. A refused change shows the page again with
the reason and status 400 (404 for a goal or funnel that does not exist).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import Connection
from werkzeug.wrappers import Response
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from crumby.dashboard import bp
from crumby.dashboard.sitepages import site_or_404
from crumby.extensions import db
from crumby.goals import (
    GoalError,
    add_funnel,
    add_goal,
    delete_funnel,
    delete_goal,
    list_funnels,
    list_goals,
)
from crumby.models import FUNNEL_MAX_STEPS, GOAL_NAME_LENGTH
from crumby.sites import SiteInfo


class GoalForm(FlaskForm):
    """A new goal: a name, and an event name or a page path."""

    name = StringField(
        "Name",
        validators=[DataRequired("Name the goal."), Length(max=GOAL_NAME_LENGTH)],
        render_kw={"placeholder": "Signed up", "autocomplete": "off"},
    )
    kind = SelectField("Reached by", choices=["event", "page"])
    target = StringField(
        "Event name or page path",
        validators=[DataRequired("Give the event name or the page path."), Length(max=2048)],
        render_kw={"placeholder": "signup  or  /pricing", "autocomplete": "off"},
    )


class FunnelForm(FlaskForm):
    """A new funnel: a name and 2 to 8 goals in order (empty steps are left out)."""

    name = StringField(
        "Name",
        validators=[DataRequired("Name the funnel."), Length(max=GOAL_NAME_LENGTH)],
        render_kw={"placeholder": "Checkout", "autocomplete": "off"},
    )


for _n in range(1, FUNNEL_MAX_STEPS + 1):
    setattr(FunnelForm, f"step_{_n}", SelectField(f"Step {_n}", choices=[], validate_choice=False))


class DeleteForm(FlaskForm):
    """Which goal or funnel to remove."""

    name = HiddenField(validators=[DataRequired()])


def _page(site: SiteInfo, goal_form=None, funnel_form=None, status: int = 200):
    with db.engine.connect() as connection:
        goals = list_goals(connection, site)
        funnels = list_funnels(connection, site)
    funnel_form = funnel_form or FunnelForm(formdata=None)
    choices = ["", *(g.name for g in goals)]
    steps = [getattr(funnel_form, f"step_{n}") for n in range(1, FUNNEL_MAX_STEPS + 1)]
    for field in steps:
        field.choices = choices
    return (
        render_template(
            "dashboard/goals.html",
            current_site=site,
            goals=goals,
            funnels=funnels,
            goal_form=goal_form or GoalForm(formdata=None),
            funnel_form=funnel_form,
            steps=steps,
            delete_form=DeleteForm(formdata=None),
        ),
        status,
    )


@bp.get("/sites/<host>/goals")
@login_required
def goals_page(host: str):
    """The site's goals and funnels, and the forms to add and remove them."""
    return _page(site_or_404(host))


def _done(site: SiteInfo, message: str) -> Response:
    flash(message, "info")
    return redirect(url_for("dashboard.goals_page", host=site.host))


@bp.post("/sites/<host>/goals")
@login_required
def add_goal_page(host: str):
    """Add a goal from the form."""
    site = site_or_404(host)
    form = GoalForm()
    if not form.validate_on_submit():
        return _page(site, goal_form=form, status=400)
    event = form.target.data if form.kind.data == "event" else None
    page = form.target.data if form.kind.data == "page" else None
    try:
        with db.engine.begin() as connection:
            goal = add_goal(connection, site.host, form.name.data, event=event, page=page)
    except GoalError as exc:
        form.name.errors = [*form.name.errors, str(exc)]
        return _page(site, goal_form=form, status=exc.status)
    return _done(site, f"Added the goal {goal.name}.")


@bp.post("/sites/<host>/funnels")
@login_required
def add_funnel_page(host: str):
    """Add a funnel from the form: its non-empty steps, in order."""
    site = site_or_404(host)
    form = FunnelForm()
    if not form.validate_on_submit():
        return _page(site, funnel_form=form, status=400)
    steps = [
        value
        for n in range(1, FUNNEL_MAX_STEPS + 1)
        if (value := getattr(form, f"step_{n}").data or "")
    ]
    try:
        with db.engine.begin() as connection:
            funnel = add_funnel(connection, site.host, form.name.data, steps)
    except GoalError as exc:
        form.name.errors = [*form.name.errors, str(exc)]
        return _page(site, funnel_form=form, status=exc.status)
    return _done(site, f"Added the funnel {funnel.name}.")


@bp.post("/sites/<host>/goals/delete")
@login_required
def delete_goal_page(host: str):
    """Remove a goal (refused, with the reason, while a funnel uses it)."""
    return _delete(host, delete_goal, "goal")


@bp.post("/sites/<host>/funnels/delete")
@login_required
def delete_funnel_page(host: str):
    """Remove a funnel; its goals stay."""
    return _delete(host, delete_funnel, "funnel")


def _delete(host: str, remove: Callable[[Connection, str, str], object], what: str):
    site = site_or_404(host)
    form = DeleteForm()
    if not form.validate_on_submit():
        abort(400, description="The form expired or was not sent from this page; try again.")
    try:
        with db.engine.begin() as connection:
            gone = remove(connection, site.host, form.name.data)  # a GoalInfo or FunnelInfo
    except GoalError as exc:
        flash(str(exc), "error")
        page, _status = _page(site)
        return page, exc.status
    return _done(site, f"Deleted the {what} {gone.name}.")  # type: ignore[attr-defined]
