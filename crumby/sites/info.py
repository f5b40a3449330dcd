"""What the rest of Crumby knows about a site: a small immutable record, no ORM session."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteInfo:
    """One registered site as read from the ``sites`` table."""

    id: int
    host: str
    timezone: str = "UTC"
    public: bool = False
    #: bumped whenever the site's stored data or its days change; part of report cache keys
    data_version: int = 0

    def describe(self) -> str:
        """The ``crumby sites`` line: ``HOST TIMEZONE public|private``."""
        return f"{self.host} {self.timezone} {'public' if self.public else 'private'}"
