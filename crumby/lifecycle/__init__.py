"""The data lifecycle (contract section 11): prune old rows, forget a visitor, export rows.

``deletion`` and ``export`` work on a SQLAlchemy Connection; ``commands``
holds ``crumby prune``, ``crumby forget`` and ``crumby export``.
"""

from crumby.lifecycle.deletion import Deleted, forget, prune
from crumby.lifecycle.export import Selection, write_csv, write_jsonl

__all__ = ["Deleted", "Selection", "forget", "prune", "write_csv", "write_jsonl"]
