"""From access-log lines to stored visits: filter, enrich, order, hand to the ingest pipeline.

A ``LineReader`` turns one raw line at a time (from a file, stdin or a
syslog datagram) into a visit row the way a tracker hit does
(``crumby.tracking``'s helpers: User-Agent facts, GeoIP, ANONYMIZE_IP; the
pipeline adds the anonymous daily visitor id), or counts it as malformed or
skipped by reason. A ``LogImporter`` stores the rows: ``add`` reads a line
with its own reader (the syslog listener), ``take`` accepts rows read
elsewhere (``crumby ingest-log`` reads in a second process,
``crumby.imports.forked``). Rows wait in a buffer and go to
``crumby.ingest``'s pipeline in batches, oldest first, each batch in one
transaction: a log is nearly in time order (a server writes a line when a
request ends, so a slow request lands a little late), and sorting a window
of rows before the older half is stored lets sessions stitch as if the hits
had come in live.

Each row carries an ``import_key`` hint: a hash of the raw line and how
often the same line came before it in this file. The pipeline turns it into
the row's key under its site and stores a line only once, however often
(and from however many overlapping rotated files) it is imported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from crumby import geo
from crumby.database import describe
from crumby.imports.formats import PARSERS, Malformed, Parser, Request
from crumby.ingest.pipeline import VISITS, Pipeline, pipeline_for
from crumby.ingest.turns import WriteTurns
from crumby.models import Visit, url_host
from crumby.sites import SiteInfo
from crumby.store import spec_of
from crumby.tracking.enrich import anonymize_ip, user_agent
from crumby.tracking.hits import UTM_KEYS, clean, limit, utm_params

#: rows per transaction (fewer commits: each one writes the index pages its rows touched)
BATCH = 5000
#: lines longer than this are malformed (no server writes them; a file that is not a log does)
LINE_MAX = 64 * 1024
#: malformed lines listed by number in a summary
EXAMPLES = 10
#: file extensions of assets, not pages (compared lower-cased)
ASSET_EXTENSIONS = frozenset(
    """
    css js mjs map json xml txt webmanifest wasm
    png jpg jpeg gif svg ico webp avif bmp tif tiff apng
    woff woff2 ttf otf eot
    mp4 webm ogg ogv mp3 m4a wav flac
    zip gz tgz bz2 xz 7z rar
    """.split()
)
#: a row's campaign columns before its URL's ``utm_*`` parameters fill them
NO_CAMPAIGN: dict[str, None] = dict.fromkeys(UTM_KEYS)
#: redirects are not page views: the browser asks again, for the page it is sent to
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: why a well-formed line is not stored, in the order they are checked
REASONS = ("blank", "error", "redirect", "method", "asset", "no_host", "bot")
#: attempts at a batch the database refused for being locked or down, and the wait after each
RETRY_WAITS = (0.5, 1.0, 2.0, 4.0)
#: identical lines (same second, visitor, page) are told apart by their count within this
#: much log time; further apart they cannot be identical, as the line holds its time
OCCURRENCE_WINDOW = dt.timedelta(minutes=10)


class StoreFailed(Exception):
    """The database would not take a batch; the message is one line."""


@dataclass
class Summary:
    """What an import did with its lines."""

    lines: int = 0
    stored: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    #: (source, line number, reason) of the first EXAMPLES malformed lines
    examples: list[tuple[str, int, str]] = field(default_factory=list)

    def merge(self, other: Summary) -> None:
        """Add the counts of ``other`` (the lines another process read) to these."""
        self.lines += other.lines
        self.stored += other.stored
        self.skipped.update(other.skipped)
        self.malformed += other.malformed
        self.examples.extend(other.examples[: EXAMPLES - len(self.examples)])

    def describe(self) -> list[str]:
        """The summary as printed by ``crumby ingest-log``."""
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()) if n)
        skipped = sum(self.skipped.values())
        lines = [
            f"lines: {self.lines}",
            f"stored: {self.stored}",
            f"skipped: {skipped}" + (f" ({reasons})" if reasons else ""),
            f"malformed: {self.malformed}",
        ]
        for source, number, reason in self.examples:
            lines.append(f"  {source}:{number}: {reason}")
        if self.malformed > len(self.examples):
            lines.append(f"  ... and {self.malformed - len(self.examples)} more")
        return lines


def is_asset(path: str) -> bool:
    """True for a request of a file such as ``/app.css?v=2``: assets are not page views."""
    end = len(path)
    for stop in ("?", "#"):
        at = path.find(stop)
        if at != -1 and at < end:
            end = at
    slash = path.rfind("/", 0, end)
    dot = path.rfind(".", slash + 1, end)
    return dot != -1 and path[dot + 1 : end].lower() in ASSET_EXTENSIONS


class Occurrences:
    """How often each line was seen before, over a sliding window of log time.

    Two identical lines (a page reloaded within its second) are two views;
    the count tells them apart in their keys. Only lines close in time can
    be identical, so two generations of counts bound the memory.
    """

    def __init__(self) -> None:
        self.current: dict[bytes, int] = {}
        self.previous: dict[bytes, int] = {}
        self.started: dt.datetime | None = None

    def count(self, digest: bytes, when: dt.datetime) -> int:
        """How many times this line came before (0 the first time)."""
        if self.started is None or when - self.started > OCCURRENCE_WINDOW:
            self.previous, self.current, self.started = self.current, {}, when
        seen = self.current.get(digest)
        if seen is None:
            seen = self.previous.get(digest, 0)
        self.current[digest] = seen + 1
        return seen


class Cache:
    """What lines share, worked out once: browser facts, places, hosts."""

    #: entries each cache may hold before it starts afresh
    LIMIT = 50_000

    def __init__(self) -> None:
        self.agents: dict[str | None, dict[str, Any]] = {}
        self.places: dict[str | None, dict[str, Any]] = {}
        self.hosts: dict[str, str] = {}
        self.paths: dict[str, str | None] = {}
        self.referrers: dict[str, str] = {}
        #: the GeoIP reader the places were looked up with
        self.reader: Any = None

    def trim(self, reader: Any) -> None:
        """After a batch: forget what grew big, and the places of a replaced GeoIP file."""
        if reader is not self.reader:
            self.reader = reader
            self.places.clear()
        for cache in (self.agents, self.places, self.hosts, self.paths, self.referrers):
            if len(cache) > self.LIMIT:
                cache.clear()


class LineReader:
    """Turns log lines into visit rows, as a tracker hit would have them; no database.

    ``site`` (from ``--site``) stores every line under that site; without it a
    line's ``host`` decides, through the pipeline's site lookup. The counts of
    what was read (lines, skipped before storing, malformed) go to ``summary``.
    """

    def __init__(
        self,
        app: Flask,
        *,
        site: SiteInfo | None = None,
        parser: Parser = PARSERS["auto"],
        scheme: str = "https",
    ) -> None:
        self.app = app
        self.site = site
        self.parser = parser
        self.scheme = scheme
        self.summary = Summary()
        self.occurrences = Occurrences()
        self.source: str | None = None
        self.anonymize = bool(app.config.get("ANONYMIZE_IP"))
        self.cache = Cache()
        self.site_host = site.host if site is not None else ""
        self.uri_size = limit(Visit, "doc_uri")
        self.referrer_size = limit(Visit, "referrer")
        self.sizes = {
            key: limit(Visit, key)
            for key in ("platform", "browser", "version", "os_version", *geo.GEO_COLUMNS)
        }

    def read(self, raw: bytes, source: str, number: int) -> dict[str, Any] | None:
        """The row of one line (without its newline), or None for a line that is not stored."""
        summary = self.summary
        summary.lines += 1
        if len(raw) > LINE_MAX:
            self._malformed(source, number, f"line longer than {LINE_MAX} bytes")
            return None
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            summary.skipped["blank"] += 1
            return None
        try:
            request = self.parser(text)
        except Malformed as exc:
            self._malformed(source, number, str(exc))
            return None
        reason = self._skip_reason(request)
        if reason is not None:
            summary.skipped[reason] += 1
            return None
        row = self._row(request)
        if row is None:
            summary.skipped["bot"] += 1
            return None
        if source != self.source:  # occurrences count within one file
            self.source, self.occurrences = source, Occurrences()
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        seen = self.occurrences.count(digest, request.time)
        row["import_key"] = digest + seen.to_bytes(4, "big")
        return row

    def reject(self, source: str, number: int, reason: str) -> None:
        """Count a line that never got as far as ``read`` (a datagram without a log line)."""
        self.summary.lines += 1
        self._malformed(source, number, reason)

    def trim(self) -> None:
        """Keep the caches bounded (``Cache.trim``); called after each batch of lines."""
        self.cache.trim(geo.reader_for(self.app))

    def take_summary(self) -> Summary:
        """The counts since the last call, leaving fresh ones (for another process to add up)."""
        summary, self.summary = self.summary, Summary()
        return summary

    def _malformed(self, source: str, number: int, reason: str) -> None:
        self.summary.malformed += 1
        if len(self.summary.examples) < EXAMPLES:
            self.summary.examples.append((source, number, reason))

    def _skip_reason(self, request: Request) -> str | None:
        if request.status >= 400:
            return "error"
        if request.status in REDIRECTS:
            return "redirect"
        if request.method != "GET":
            return "method"
        if is_asset(request.path):
            return "asset"
        if self.site is None and not request.host:
            return "no_host"
        return None

    def _row(self, request: Request) -> dict[str, Any] | None:
        """The visit row of a page request, as a tracker hit would have it; None for a bot.

        What a line shares with many others (its browser, its address, its
        visitor's day) is worked out once and kept in ``self.cache``.
        """
        cache = self.cache
        ua = request.user_agent
        agent = cache.agents.get(ua)
        if agent is None:
            agent = cache.agents[ua] = self._agent(ua)
        if not agent:
            return None
        ip = request.ip
        place = cache.places.get(ip)
        if place is None:
            place = cache.places[ip] = self._place(ip)
        host = request.host or self.site_host
        doc_host = cache.hosts.get(host)
        if doc_host is None:
            doc_host = cache.hosts[host] = url_host(f"https://{host}/") or ""
        path = request.path
        uri = clean(f"{request.scheme or self.scheme}://{host}{path}", self.uri_size)
        doc_path = cache.paths.get(path, "")
        if doc_path == "":
            doc_path = cache.paths[path] = _page_path(path, len(uri or "") < self.uri_size)
        referrer = request.referrer
        if referrer is not None:
            referrer = clean(referrer, self.referrer_size)
        referrer_host = cache.referrers.get(referrer) if referrer else None
        if referrer and referrer_host is None:
            referrer_host = cache.referrers[referrer] = url_host(referrer) or ""
        row: dict[str, Any] = {
            "datetime": request.time,
            "doc_uri": uri,
            "doc_host": doc_host or None,
            "doc_path": doc_path,
            "referrer": referrer,
            "referrer_host": referrer_host or None,
            # the Referer header of a page request is the page's referrer
            "_referrer": referrer,
            "cid": None,
            # the pipeline makes the anonymous id of the line's day, address and browser
            "visitor_hint": (ip, ua),
            "is_bot": False,
            **agent,
            **place,
        }
        if self.site is not None:
            row["site_id"] = self.site.id
        # every row has the campaign keys (most of them empty), so that a batch's rows share
        # their keys and the pipeline finds the empty columns quickly
        row.update(NO_CAMPAIGN)
        if uri is not None and "utm_" in uri:
            row.update(utm_params(uri))
        return row

    def _agent(self, ua: str | None) -> dict[str, Any]:
        """The browser columns of a User-Agent; empty for a bot."""
        agent = user_agent(ua)
        if agent.is_bot:
            return {}
        sizes = self.sizes
        return {
            "platform": clean(agent.platform, sizes["platform"]),
            "browser": clean(agent.browser, sizes["browser"]),
            "version": clean(agent.version, sizes["version"]),
            "os_version": clean(agent.os_version, sizes["os_version"]),
            "device": agent.device,
        }

    def _place(self, ip: str | None) -> dict[str, Any]:
        """The address columns: geo from the full address, then ``ip`` cut if ANONYMIZE_IP."""
        if not ip:
            return {"ip": None}
        place = {
            key: clean(value, self.sizes[key]) if isinstance(value, str) else value
            for key, value in geo.lookup(ip, self.app).items()
        }
        stored = anonymize_ip(ip) if self.anonymize else ip
        place["ip"] = stored[:45] if stored else None
        return place


class LogImporter:
    """Stores the rows of log lines through the app's ingest pipeline, in time order.

    Lines come in one at a time (``add``, from the syslog listener or a
    test) or as rows a ``LineReader`` made elsewhere (``take``, from the
    reading process of ``crumby.imports.forked``).
    """

    def __init__(
        self,
        app: Flask,
        engine: Engine,
        *,
        site: SiteInfo | None = None,
        parser: Parser = PARSERS["auto"],
        scheme: str = "https",
        batch: int = BATCH,
        retry_waits: tuple[float, ...] = RETRY_WAITS,
    ) -> None:
        self.app = app
        self.engine = engine
        self.reader = LineReader(app, site=site, parser=parser, scheme=scheme)
        self.batch = batch
        self.retry_waits = retry_waits
        self.pipeline: Pipeline = pipeline_for(app, engine)
        self.buffer: list[dict[str, Any]] = []
        self.turns = WriteTurns.for_engine(engine)

    @property
    def summary(self) -> Summary:
        """What happened to the lines so far: the reader's counts and what was stored."""
        return self.reader.summary

    # ---- lines ------------------------------------------------------------------------------

    def add(self, raw: bytes, source: str, number: int) -> None:
        """Read one line (without its newline); store the buffer when a batch is full."""
        row = self.reader.read(raw, source, number)
        if row is not None:
            self.take([row])

    def reject(self, source: str, number: int, reason: str) -> None:
        """Count a line that never got as far as ``add`` (a datagram without a log line)."""
        self.reader.reject(source, number, reason)

    def take(self, rows: list[dict[str, Any]]) -> None:
        """Rows read from lines; stored once two batches are buffered (see ``flush``)."""
        self.buffer.extend(rows)
        if len(self.buffer) >= 2 * self.batch:
            self.flush()

    # ---- storing ----------------------------------------------------------------------------

    def flush(self, everything: bool = False) -> None:
        """Store the oldest batch of the buffer (or all of it), in time order.

        Without ``everything`` the newer half stays, so that a line that
        arrives a little late still goes out in its place. Rows leave the
        buffer only once stored: after a StoreFailed they are still here.
        """
        self.buffer.sort(key=_time)
        while self.buffer and (everything or len(self.buffer) >= 2 * self.batch):
            rows = self.buffer[: self.batch]
            self._store(rows)
            del self.buffer[: self.batch]
        self.reader.trim()

    def finish(self) -> Summary:
        """Store everything still buffered; the summary of the whole import."""
        self.flush(everything=True)
        self.turns.close()
        return self.summary

    def _store(self, rows: list[dict[str, Any]]) -> None:
        items = [(VISITS, row) for row in rows]
        waits = iter(self.retry_waits)
        conflicts = 0
        while True:
            try:
                with self.turns.turn(), self.engine.begin() as connection:
                    spec_of(connection).bulk_writes(connection)
                    batch = self.pipeline.run(connection, items)
            except IntegrityError as exc:
                # another import stored some of these lines a moment ago: their keys are
                # committed now, so the retry drops them as duplicates
                conflicts += 1
                if conflicts > 3:
                    raise StoreFailed(f"database: {describe(exc)}") from None
                continue
            except DBAPIError as exc:
                # locked, gone or restarting: worth waiting for; anything else is not
                transient = isinstance(exc, OperationalError) or exc.connection_invalidated
                wait = next(waits, None) if transient else None
                if wait is None:
                    raise StoreFailed(f"database: {describe(exc)}") from None
                time.sleep(wait)
                continue
            except SQLAlchemyError as exc:
                raise StoreFailed(f"database: {describe(exc)}") from None
            break
        self.pipeline.counted(batch)
        self.summary.stored += batch.stored["visits"]
        self.summary.skipped.update(batch.dropped)


def _page_path(path: str, whole: bool) -> str | None:
    """The page of a request target (``url_path`` of its URL), or None to leave it to the
    pipeline: for a URL cut to its column's size, or one that ``urlsplit`` would clean."""
    if not whole or any(c in path for c in "\t\r\n ") or not path.startswith("/"):
        return None
    for stop in ("?", "#"):
        at = path.find(stop)
        if at != -1:
            path = path[:at]
    return path


def _time(row: dict[str, Any]) -> dt.datetime:
    return row["datetime"]
