"""Reading a log in a second process while this one stores: two cores for one import.

Turning a line into a row (parsing, the User-Agent and GeoIP facts, the
line's key) and storing rows (the ingest pipeline, the database's own work)
each take about half of an import's CPU time. ``import_source`` forks a
reading process that runs a ``LineReader`` over the source and sends its rows
in chunks through a pipe; this process stores them with its ``LogImporter``
as before (sorted by time, in batches). The reader is a fork, so it starts
with everything the importer knows (the site, the parser, the GeoIP reader,
an open file or stdin) and never touches the database; it ends with
``os._exit``, so nothing of this process (buffers, connections, atexit
handlers) runs twice.

A thread of this process receives the chunks into a bounded queue, so that
the reader keeps going while a batch is being stored, and at most
``AHEAD`` chunks wait in memory. The reader's counts (lines, skipped,
malformed) come with each chunk and are added to the importer's summary.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import threading
import zlib
from collections.abc import Callable, Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

from crumby.imports.importer import LogImporter

#: lines per chunk sent by the reader
CHUNK = 2000
#: chunks received but not yet stored, at most (about 1 MB each)
AHEAD = 16
#: what the reader sends after its last chunk: "" when the whole source was read,
#: else why it stopped early (a damaged .gz: what came before it is still stored)
DONE = "done"


class ReadStopped(OSError):
    """The reading process stopped before the end of its source; the message says why."""


def import_source(
    importer: LogImporter,
    lines: Iterator[bytes],
    source: str,
    position: Callable[[], int],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Read ``lines`` in a forked process and store their rows here.

    ``position()`` tells, in the reader, how far the source is read;
    ``progress(position)`` is called here with it after each chunk. A source
    that cannot be read to its end raises ``ReadStopped`` once everything read
    before the fault is handed to the importer (it may still be buffered:
    ``finish`` stores it); a ``StoreFailed`` from the importer stops the reader.
    """
    receiving, sending = Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # the reader: never returns
        receiving.close()
        _read(importer, lines, source, position, sending)
    sending.close()
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=AHEAD)
    receiver = threading.Thread(
        target=_receive, args=(receiving, chunks), name="crumby-log-receiver", daemon=True
    )
    receiver.start()
    finished = ended = False
    try:
        while True:
            data = chunks.get()
            if data is None:
                ended = True
                break
            message = pickle.loads(data)
            if message[0] == DONE:
                finished = True
                if message[1]:
                    raise ReadStopped(message[1])
                break
            _kind, rows, summary, at = message
            importer.summary.merge(summary)
            importer.take(rows)
            if progress is not None:
                progress(at)
        if not finished:
            raise ReadStopped("the reading process stopped unexpectedly")
    finally:
        if not finished:
            _stop(pid)
        if not ended:
            _drain(chunks)
        receiver.join()
        receiving.close()
        os.waitpid(pid, 0)


def _read(
    importer: LogImporter,
    lines: Iterator[bytes],
    source: str,
    position: Callable[[], int],
    sending: Connection,
) -> None:
    """The reading process: rows of every line, in chunks, then DONE; exits."""
    code = 0
    try:
        # Ctrl-C reaches the whole process group: the storing process decides, the reader
        # leaves when it is told to (SIGTERM) or when its pipe closes
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        reader = importer.reader
        reader.take_summary()  # the storing process has the counts of earlier sources
        rows: list[dict[str, Any]] = []
        stopped = ""
        number = 0
        try:
            for number, raw in enumerate(lines, 1):
                row = reader.read(raw, source, number)
                if row is not None:
                    rows.append(row)
                if number % CHUNK == 0:
                    _send(sending, ("rows", rows, reader.take_summary(), position()))
                    rows = []
                    reader.trim()
        except (OSError, EOFError, zlib.error) as exc:
            stopped = f"{exc}"
        _send(sending, ("rows", rows, reader.take_summary(), position()))
        _send(sending, (DONE, stopped))
    except BaseException as exc:  # noqa: BLE001 - reported to the storing process
        code = 1
        try:
            _send(sending, (DONE, f"reader failed: {type(exc).__name__}: {exc}"))
        except BaseException:  # noqa: BLE001, S110 - the storing process is gone
            pass
    finally:
        os._exit(code)


def _send(sending: Connection, message: tuple[Any, ...]) -> None:
    sending.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))


def _receive(receiving: Connection, chunks: queue.Queue[bytes | None]) -> None:
    """Move chunks from the pipe to the queue until the reader closes its end."""
    try:
        while True:
            chunks.put(receiving.recv_bytes())
    except (EOFError, OSError):  # the reader has exited (or was stopped)
        pass
    chunks.put(None)


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _drain(chunks: queue.Queue[bytes | None]) -> None:
    """Empty the queue until the receiver's end mark, so that it is never left blocked."""
    while chunks.get() is not None:
        pass
