"""``crumby syslog``: nginx's access log over syslog UDP, stored in batches.

nginx sends each log line as one datagram with an RFC 3164 header
(``access_log syslog:server=127.0.0.1:65140,tag=crumby crumby;``)::

    <190>Oct 10 13:55:36 web1 crumby: {"ip":"203.0.113.9","host":"example.org",...}

Two threads share the work. The receiving thread only reads datagrams and
puts them in a bounded queue, so the kernel's socket buffer is emptied
however slow the database is; when the queue is full, a datagram is dropped
and counted (``dropped``) rather than held in memory. The storing thread
takes lines off the queue into a batch and stores it through the same
``LogImporter`` as ``crumby ingest-log`` every ``batch_seconds`` or
``batch_lines`` lines, whichever comes first. While the database refuses a
batch, the batch waits (and is retried) and the queue absorbs the traffic
up to its bound.

``stop()`` (SIGTERM, SIGINT) ends receiving; what was received, the batch in
hand and the queue, is stored before ``serve`` returns.
"""

from __future__ import annotations

import queue
import re
import socket
import sys
import threading
import time
from collections.abc import Callable

from crumby.imports.importer import LogImporter, StoreFailed, Summary

#: ``<PRI>Mmm dd hh:mm:ss [HOSTNAME ]TAG: MESSAGE`` as nginx writes it (RFC 3164)
HEADER = re.compile(
    rb"<(\d{1,3})>[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} (?:[^\s:]+ )?[^\s:]+: ?"
)
#: the largest datagram UDP carries
DATAGRAM_MAX = 65535
#: how often the receiving thread looks at the stop flag, in seconds
POLL_SECONDS = 0.2
#: on stop, how long to keep trying a database that refuses the last batches
STOP_SECONDS = 10.0
#: a socket buffer big enough for a burst while the receiving thread is busy (the kernel may
#: cap it at net.core.rmem_max)
RECEIVE_BUFFER = 4 * 1024 * 1024
#: Linux's SO_RXQ_OVFL (Python names no constant for it): the socket buffer's drop count
SO_RXQ_OVFL = 40 if sys.platform.startswith("linux") else 0
ANCILLARY_SPACE = socket.CMSG_SPACE(4)
#: how often a busy thread lets another run, in seconds (Python's default is 0.005): the
#: receiving thread needs a turn for every datagram
SWITCH_INTERVAL = 0.0005


class Malformed(ValueError):
    """A datagram that is not a syslog message."""


def message_of(datagram: bytes) -> bytes:
    """The log line inside a syslog datagram; a datagram without a header is the line itself."""
    if datagram[:1] != b"<":
        return datagram.strip()
    match = HEADER.match(datagram)
    if match is None:
        raise Malformed("not a syslog message (RFC 3164 header expected)")
    return datagram[match.end() :].strip()


class SyslogListener:
    """A UDP socket, a bounded queue and a storing thread around one ``LogImporter``."""

    def __init__(
        self,
        importer: LogImporter,
        host: str = "127.0.0.1",
        port: int = 65140,
        *,
        batch_lines: int = 500,
        batch_seconds: float = 1.0,
        queue_lines: int = 50_000,
        report: Callable[[str], None] | None = None,
        stats_seconds: float = 60.0,
    ) -> None:
        self.importer = importer
        self.batch_lines = batch_lines
        self.batch_seconds = batch_seconds
        self.queue: queue.Queue[bytes] = queue.Queue(maxsize=queue_lines)
        self.report = report or (lambda message: None)
        self.stats_seconds = stats_seconds
        self.stopping = threading.Event()
        self.received = 0
        #: datagrams not stored because the queue was full (the database too slow)
        self.dropped = 0
        #: datagrams the kernel dropped because the socket buffer was full (Linux only): the
        #: receiving thread waited too long for its turn (Python runs one thread at a time)
        self.overflowed = 0
        #: datagrams lost because the database still refused them at stop
        self.lost = 0
        self.numbered = 0
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        except OSError:
            pass
        if SO_RXQ_OVFL:  # Linux tells, with each datagram, how many the socket buffer lost
            try:
                self.socket.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
            except OSError:
                pass
        self.socket.bind((host, port))
        self.socket.settimeout(POLL_SECONDS)
        self.address = self.socket.getsockname()[:2]
        self.storing = threading.Thread(target=self._store_loop, name="crumby-syslog-store")

    # ---- receiving ----------------------------------------------------------------------------

    def serve(self) -> Summary:
        """Receive until ``stop()``; then store what was received. Returns the import summary."""
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, SWITCH_INTERVAL))
        self.storing.start()
        reported = time.monotonic()
        last = ""
        try:
            while not self.stopping.is_set():
                if time.monotonic() - reported >= self.stats_seconds:
                    reported = time.monotonic()
                    line = self.status()
                    if line != last:
                        self.report(line)
                        last = line
                try:
                    datagram, extra, _flags, _sender = self.socket.recvmsg(
                        DATAGRAM_MAX, ANCILLARY_SPACE
                    )
                except (TimeoutError, InterruptedError):  # a signal: look at the stop flag
                    continue
                for level, kind, data in extra:
                    if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(data) >= 4:
                        self.overflowed = int.from_bytes(data[:4], sys.byteorder)
                self.received += 1
                try:
                    self.queue.put_nowait(datagram)
                except queue.Full:
                    self.dropped += 1
        finally:
            self.stopping.set()
            self.socket.close()
            self.storing.join()
            sys.setswitchinterval(previous)
        return self.importer.summary

    def stop(self) -> None:
        """End receiving; ``serve`` returns once everything received is stored."""
        self.stopping.set()

    # ---- storing ------------------------------------------------------------------------------

    def _store_loop(self) -> None:
        while True:
            stopping = self.stopping.is_set()
            self._take_batch(stopping)
            if self.importer.buffer:
                self._flush(stopping)
            if stopping and self.queue.empty() and not self.importer.buffer:
                return

    def _take_batch(self, stopping: bool) -> None:
        """Move a batch from the queue to the importer: ``batch_lines``, or what came in time.

        The batch's clock starts with its first line; while stopping, only
        what is queued already is taken.
        """
        get = self.queue.get
        try:
            datagram = self.queue.get_nowait() if stopping else get(timeout=POLL_SECONDS)
        except queue.Empty:
            return
        self._add(datagram)
        deadline = time.monotonic() + self.batch_seconds
        taken = 1
        while taken < self.batch_lines:
            stopping = stopping or self.stopping.is_set()
            try:
                if stopping:  # the batch in hand goes now, with what is queued
                    datagram = self.queue.get_nowait()
                else:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        return
                    datagram = get(timeout=min(wait, POLL_SECONDS))
            except queue.Empty:
                if stopping:
                    return
                continue
            self._add(datagram)
            taken += 1

    def _add(self, datagram: bytes) -> None:
        self.numbered += 1
        try:
            line = message_of(datagram)
        except Malformed as exc:
            self.importer.reject("syslog", self.numbered, str(exc))
            return
        self.importer.add(line, "syslog", self.numbered)

    def status(self) -> str:
        """Counts so far, one line."""
        summary = self.importer.summary
        skipped = sum(summary.skipped.values())
        return (
            f"received {self.received}, stored {summary.stored}, skipped {skipped}, "
            f"malformed {summary.malformed}, dropped {self.dropped + self.overflowed}"
        )

    def _flush(self, stopping: bool) -> None:
        """Store the batch in hand; while the database refuses it, wait and try again."""
        waited = 0.0
        wait = 0.5
        while True:
            try:
                self.importer.flush(everything=True)
                return
            except StoreFailed as exc:
                if stopping and waited >= STOP_SECONDS:
                    self.lost += len(self.importer.buffer)
                    self.importer.buffer.clear()
                    self.report(f"giving up: {exc}")
                    return
                self.report(f"{exc}; trying again in {wait:g} s")
                time.sleep(wait)
                waited += wait
                wait = min(wait * 2, 8.0)
                stopping = stopping or self.stopping.is_set()
