"""Goals and funnels: what a site counts as a conversion, and the paths towards it."""

from crumby.goals.registry import (
    FunnelInfo,
    GoalError,
    GoalInfo,
    add_funnel,
    add_goal,
    delete_funnel,
    delete_goal,
    find_funnel,
    list_funnels,
    list_goals,
)

__all__ = [
    "FunnelInfo",
    "GoalError",
    "GoalInfo",
    "add_funnel",
    "add_goal",
    "delete_funnel",
    "delete_goal",
    "find_funnel",
    "list_funnels",
    "list_goals",
]
