"""``visitor_rows(alias)``: the rows a report of visitors and views reads, the fewest that answer.

A report that counts distinct visitors (``COUNT(DISTINCT v.cid)``) and views
by a view's device or place (browser, OS, device, language, screen, country,
region, city) gets the same answer from ``visitor_days``, the views folded
per visitor, local day and those columns by the ingest pipeline
(``crumby.ingest.rollups``), as from the views themselves: about a
fifth of the rows. Under a filter those rows do not carry (a page, a
source, a campaign), only the views can answer. The helper picks, so one
template serves both::

    {% set rows = visitor_rows("v") %}
    SELECT v.browser, COUNT(DISTINCT v.cid) AS visitors, {{ rows.views }} AS views
    FROM {{ rows }}
    GROUP BY v.browser

``{{ rows }}`` renders the table, its alias and the conditions of the site,
the range and the filters; ``{{ rows.views }}`` counts views (``SUM`` of the
folded views, or ``COUNT(*)`` of the views); ``rows.folded`` says which.
Only the columns of ``crumby.ingest.rollups.VISITOR_DAYS`` may be used.
"""

from __future__ import annotations

from crumby.reporting.filters import FilterHelper
from crumby.store.base import expr


class Rows(str):
    """The ``FROM`` part a report reads (its text), with how to count views over it."""

    views: str
    folded: bool

    def __new__(cls, text: str, views: str, folded: bool) -> Rows:
        rows = super().__new__(cls, text)
        rows.views = views
        rows.folded = folded
        return rows


class VisitorRows:
    """The ``visitor_rows`` template helper of one rendering (its filters)."""

    def __init__(self, filters: FilterHelper) -> None:
        self.filters = filters

    def __call__(self, alias: str = "v") -> Rows:
        """``visitor_days`` rows when they answer the active filters, else the views."""
        a = expr(alias)
        if self.filters.covered_by("visitor_days"):
            return Rows(
                f"visitor_days {a} WHERE {a}.site_id = :site_id AND {a}.day >= :d0"
                f" AND {a}.day <= :d1{self.filters(a, by='visitor_days')}",
                f"SUM({a}.views)",
                True,
            )
        return Rows(
            f"visits {a} WHERE {a}.site_id = :site_id AND {a}.datetime >= :t0"
            f" AND {a}.datetime < :t1_next AND {a}.is_bot = FALSE{self.filters(a)}",
            "COUNT(*)",
            False,
        )
