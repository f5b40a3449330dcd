"""Adding, listing and removing a site's goals and funnels (contract section 9).

A goal is a named event (``cmb.event`` name) or page path of a site; a funnel
is a named, ordered list of 2 to 8 of its goals (a goal may appear more than
once). A goal that a funnel uses is not deleted: the funnel would lose a step
and its numbers would change meaning silently, so the user deletes the funnel
first. Every change moves the site's ``data_version`` on, so that no cached
report answer outlives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, update

from crumby.models import (
    FUNNEL_MAX_STEPS,
    FUNNEL_MIN_STEPS,
    GOAL_NAME_LENGTH,
    Event,
    Funnel,
    FunnelStep,
    Goal,
    Site,
    Visit,
    column_length,
    utcnow,
)
from crumby.sites import SiteInfo, find_site


class GoalError(ValueError):
    """A goal or funnel command or form got something it cannot use; the message is one line."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        #: 404 for something that does not exist, 400 for a bad value
        self.status = status


@dataclass(frozen=True)
class GoalInfo:
    """One goal: its name, ``kind`` ('event' or 'page') and the event name or page path."""

    name: str
    kind: str
    target: str

    def describe(self) -> str:
        """The ``crumby goal list`` line: ``NAME<TAB>event|page<TAB>TARGET``."""
        return f"{self.name}\t{self.kind}\t{self.target}"


@dataclass(frozen=True)
class FunnelInfo:
    """One funnel: its name and its goals in step order."""

    name: str
    steps: tuple[GoalInfo, ...]

    def describe(self) -> str:
        """The ``crumby funnel list`` line: ``NAME<TAB>GOAL1 > GOAL2 > ...``."""
        return f"{self.name}\t{' > '.join(step.name for step in self.steps)}"


#: the longest event name and page path a goal can match (the columns they are stored in)
EVENT_LENGTH = column_length(Event, "name") or 255
PATH_LENGTH = column_length(Visit, "doc_path") or 2048


def _text(what: str, value: object, limit: int) -> str:
    """A non-empty printable one-line text of at most ``limit`` characters, stripped."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise GoalError(f"{what} must not be empty")
    if len(text) > limit:
        raise GoalError(f"{what} is too long: at most {limit} characters")
    if not text.isprintable():
        raise GoalError(f"{what} must not contain control characters")
    return text


def check_name(value: object, what: str = "a goal's name") -> str:
    """A goal or funnel name as stored."""
    return _text(what, value, GOAL_NAME_LENGTH)


def check_target(event: str | None, page: str | None) -> tuple[str, str]:
    """``(kind, target)`` from exactly one of an event name and a page path."""
    if (event is None) == (page is None):
        raise GoalError("a goal needs exactly one of --event NAME or --page PATH")
    if event is not None:
        return "event", _text("the event name", event, EVENT_LENGTH)
    path = _text("the page path", page, PATH_LENGTH)
    if not path.startswith("/"):
        raise GoalError(f"a page goal is a path starting with /, such as /pricing: {path[:100]!r}")
    if "?" in path or "#" in path:
        raise GoalError("a page goal is a path without query string or fragment")
    return "page", path


def _site(connection: Connection, host: str) -> SiteInfo:
    site = find_site(connection, host)
    if site is None:
        raise GoalError(f"no such site: {str(host)[:253]}", 404)
    return site


def _touch(connection: Connection, site: SiteInfo) -> None:
    """Cached answers of the site's reports must not survive a goal or funnel change."""
    connection.execute(
        update(Site).where(Site.id == site.id).values(data_version=Site.data_version + 1)
    )


def list_goals(connection: Connection, site: SiteInfo) -> list[GoalInfo]:
    """The site's goals, by name."""
    rows = connection.execute(
        select(Goal.name, Goal.kind, Goal.target).where(Goal.site_id == site.id).order_by(Goal.name)
    )
    return [GoalInfo(*row) for row in rows]


def add_goal(
    connection: Connection, host: str, name: str, event: str | None = None, page: str | None = None
) -> GoalInfo:
    """Add a goal to the site ``host``; GoalError for any bad input or a duplicate name."""
    site = _site(connection, host)
    name = check_name(name)
    kind, target = check_target(event, page)
    same = select(Goal.id).where(Goal.site_id == site.id, Goal.name == name)
    if connection.execute(same).first():
        raise GoalError(f"{site.host} already has a goal named {name!r}")
    connection.execute(
        Goal.__table__.insert().values(
            site_id=site.id, name=name, kind=kind, target=target, created_at=utcnow()
        )
    )
    _touch(connection, site)
    return GoalInfo(name, kind, target)


def delete_goal(connection: Connection, host: str, name: str) -> GoalInfo:
    """Remove a goal; GoalError when it does not exist or a funnel uses it."""
    site = _site(connection, host)
    row = connection.execute(
        select(Goal.id, Goal.name, Goal.kind, Goal.target).where(
            Goal.site_id == site.id, Goal.name == str(name).strip()
        )
    ).first()
    if row is None:
        raise GoalError(f"{site.host} has no goal named {str(name)[:100]!r}", 404)
    users = connection.scalars(
        select(Funnel.name)
        .join(FunnelStep, FunnelStep.funnel_id == Funnel.id)
        .where(FunnelStep.goal_id == row.id)
        .distinct()
        .order_by(Funnel.name)
    ).all()
    if users:
        names = ", ".join(repr(n) for n in users)
        raise GoalError(
            f"goal {row.name!r} is a step of the funnel{'s' if len(users) > 1 else ''} {names}; "
            f"delete {'them' if len(users) > 1 else 'it'} first "
            f"(crumby funnel del {site.host} NAME)"
        )
    connection.execute(delete(Goal).where(Goal.id == row.id))
    _touch(connection, site)
    return GoalInfo(row.name, row.kind, row.target)


def _funnels(connection: Connection, site: SiteInfo, name: str | None = None) -> list[FunnelInfo]:
    query = (
        select(Funnel.id, Funnel.name, Goal.name, Goal.kind, Goal.target)
        .join(FunnelStep, FunnelStep.funnel_id == Funnel.id)
        .join(Goal, Goal.id == FunnelStep.goal_id)
        .where(Funnel.site_id == site.id)
        .order_by(Funnel.name, Funnel.id, FunnelStep.position)
    )
    if name is not None:
        query = query.where(Funnel.name == name)
    found: dict[int, tuple[str, list[GoalInfo]]] = {}
    for funnel_id, funnel_name, *goal in connection.execute(query):
        found.setdefault(funnel_id, (funnel_name, []))[1].append(GoalInfo(*goal))
    return [FunnelInfo(n, tuple(steps)) for n, steps in found.values()]


def list_funnels(connection: Connection, site: SiteInfo) -> list[FunnelInfo]:
    """The site's funnels, by name, each with its goals in step order."""
    return _funnels(connection, site)


def find_funnel(connection: Connection, site: SiteInfo, name: str) -> FunnelInfo | None:
    """The site's funnel of that name, or None (also for a name no funnel can have)."""
    try:
        name = check_name(name, "a funnel's name")
    except GoalError:
        return None
    found = _funnels(connection, site, name)
    return found[0] if found else None


def add_funnel(
    connection: Connection, host: str, name: str, goal_names: Sequence[str]
) -> FunnelInfo:
    """Add a funnel of 2 to 8 existing goals, in order; GoalError for any bad input."""
    site = _site(connection, host)
    name = check_name(name, "a funnel's name")
    if not FUNNEL_MIN_STEPS <= len(goal_names) <= FUNNEL_MAX_STEPS:
        raise GoalError(
            f"a funnel has {FUNNEL_MIN_STEPS} to {FUNNEL_MAX_STEPS} steps, got {len(goal_names)}"
        )
    goals = {
        goal_name: (goal_id, GoalInfo(goal_name, kind, target))
        for goal_id, goal_name, kind, target in connection.execute(
            select(Goal.id, Goal.name, Goal.kind, Goal.target).where(Goal.site_id == site.id)
        )
    }
    steps = []
    for raw in goal_names:
        wanted = str(raw).strip()
        hit = goals.get(wanted)
        if hit is None:
            raise GoalError(
                f"{site.host} has no goal named {wanted[:100]!r} "
                f"(add it first: crumby goal add {site.host} NAME --event E | --page PATH)",
                404,
            )
        steps.append(hit)
    if connection.execute(
        select(Funnel.id).where(Funnel.site_id == site.id, Funnel.name == name)
    ).first():
        raise GoalError(f"{site.host} already has a funnel named {name!r}")
    funnel_id = connection.execute(
        Funnel.__table__.insert().values(site_id=site.id, name=name, created_at=utcnow())
    ).inserted_primary_key[0]
    connection.execute(
        FunnelStep.__table__.insert(),
        [
            {"funnel_id": funnel_id, "position": n, "goal_id": goal_id}
            for n, (goal_id, _info) in enumerate(steps, start=1)
        ],
    )
    _touch(connection, site)
    return FunnelInfo(name, tuple(info for _id, info in steps))


def delete_funnel(connection: Connection, host: str, name: str) -> FunnelInfo:
    """Remove a funnel (its goals stay); GoalError when it does not exist."""
    site = _site(connection, host)
    funnel = find_funnel(connection, site, name)
    funnel_id = connection.scalar(
        select(Funnel.id).where(Funnel.site_id == site.id, Funnel.name == str(name).strip())
    )
    if funnel is None or funnel_id is None:
        raise GoalError(f"{site.host} has no funnel named {str(name)[:100]!r}", 404)
    connection.execute(delete(FunnelStep).where(FunnelStep.funnel_id == funnel_id))
    connection.execute(delete(Funnel).where(Funnel.id == funnel_id))
    _touch(connection, site)
    return funnel
