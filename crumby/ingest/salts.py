"""Anonymous visitor ids: a random salt per UTC day, kept in the database, then deleted.

A hit without ``cid`` (a tracker without cookies, a ``<img>`` fallback, a log
line) gets the id ``anon-`` + HMAC(salt of the hit's UTC day, site, address,
User-Agent): the same visitor keeps one id on one site all day, in every
worker and process, and gets another on the next day and on another site.

The salt is random and lives in the ``visitor_salts`` table, shared by all
processes: the first batch of a day (in any process) creates it, and then
deletes the salts older than VISITOR_SALT_DAYS days. Once a day's salt is
gone, nobody (not even the database's owner with the whole log) can compute
which stored id belongs to which address: there is no long-lived key
(SECRET_KEY is not used) to recompute it from.

Creating the row races between processes: each inserts its candidate with
the database's insert-or-ignore (``crumby.store``), in the batch's own
transaction, then reads whichever one won. A process keeps the salts it has
seen committed in memory for the rest of the day, so a hit costs a dict
lookup and an HMAC, no query.

Log imports need the salt of each line's day: a day still kept gives its
lines the ids the live hits of that day got; a day older than that gets a
fresh salt (consistent within that import and others on the same day, but
matching no live hit's id, and deleted again at the next day's rotation).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import threading
from collections.abc import Callable

from sqlalchemy import Connection, Table, select

from crumby.models import VisitorSalt
from crumby.store import spec_of

SALTS: Table = VisitorSalt.__table__  # type: ignore[assignment]
#: as much of a User-Agent as the id depends on (longer ones are the same browser)
UA_MAX_LENGTH = 512


def anonymous_id(salt: bytes, site_id: int, ip: str | None, ua: str | None) -> str:
    """The visitor id for a hit without ``cid``: one per site, address and browser per day."""
    message = f"{site_id}|{ip or ''}|{(ua or '')[:UA_MAX_LENGTH]}".encode("utf-8", "replace")
    # hmac.digest: OpenSSL's one-shot HMAC, the same bytes as hmac.new(...).digest(), faster
    return "anon-" + hmac.digest(salt, message, "sha256").hex()[:32]


class Salts:
    """The salts this process has seen committed, and how to get the others."""

    def __init__(self, keep_days: int, today: Callable[[], dt.date]) -> None:
        self.keep_days = max(1, int(keep_days))
        self.today = today
        self.known: dict[dt.date, bytes] = {}
        self.lock = threading.Lock()

    def salt(self, connection: Connection, day: dt.date, pending: dict[dt.date, bytes]) -> bytes:
        """The salt of ``day``, read or created in the caller's transaction.

        A salt read or made in a transaction goes into ``pending``; the caller
        hands it to ``committed`` once that transaction commits (a rolled back
        one may have made a salt that never existed for anyone else).
        """
        found = self.known.get(day) or pending.get(day)
        if found is not None:
            return found
        spec = spec_of(connection)
        made = spec.insert_ignore(connection, SALTS, {"day": day, "salt": secrets.token_hex(32)})
        stored = connection.execute(spec.latest(select(SALTS.c.salt).where(SALTS.c.day == day)))
        value = bytes.fromhex(stored.scalar_one())
        today = self.today()
        if made and day >= today:
            # The day's first: older days' salts go. Only the one transaction that made the
            # row deletes (the others waited on its row and read it), so no two transactions
            # lock the same range of days from both ends (InnoDB would call that a deadlock).
            connection.execute(SALTS.delete().where(SALTS.c.day < self.oldest_kept(today)))
        pending[day] = value
        return value

    def oldest_kept(self, today: dt.date) -> dt.date:
        """The first day whose salt is kept on ``today``."""
        return today - dt.timedelta(days=self.keep_days - 1)

    def committed(self, pending: dict[dt.date, bytes]) -> None:
        """Remember salts whose transaction committed; forget days that are over."""
        if not pending:
            return
        with self.lock:
            oldest = self.oldest_kept(self.today())
            # past days' salts (a log import's) are read again per batch, never kept here
            known = {**self.known, **pending}
            self.known = {day: salt for day, salt in known.items() if day >= oldest}
