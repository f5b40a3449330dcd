"""Where log lines come from: files, gzip-compressed files and stdin, read as bytes.

Compression is recognised by its magic bytes, not the name, so
``access.log.2.gz`` and a gzip stream on stdin both work (and a ``.gz`` name
on a plain file does no harm). Lines are read with a length limit, so a file
that is not a log (one enormous "line") cannot take all memory.
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from crumby.imports.importer import LINE_MAX

GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Source:
    """An opened log: its name for messages, its lines' stream, and how far it has been read."""

    name: str
    stream: IO[bytes]
    #: the file as stored (compressed for .gz), for progress: ``position()`` of ``size``
    raw: IO[bytes]
    size: int | None

    def position(self) -> int:
        """Bytes of the stored file read so far."""
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        """Close what ``open_source`` opened (never stdin itself)."""
        if self.stream is not self.raw:
            self.stream.close()
        if self.raw is not _stdin():
            self.raw.close()


def _stdin() -> IO[bytes]:
    return sys.stdin.buffer


def open_source(path: str) -> Source:
    """Open ``path`` (``-`` for stdin), decompressing gzip; OSError if it cannot be read."""
    if path == "-":
        raw = _stdin()
        peek = getattr(raw, "peek", None)
        head = peek(2)[:2] if peek is not None else b""
        name, size = "stdin", None
    else:
        if os.path.isdir(path):
            raise IsADirectoryError(21, "is a directory", path)
        raw = open(path, "rb")  # noqa: SIM115 - closed by Source.close
        head = raw.read(2)
        raw.seek(0)
        name = path
        size = os.fstat(raw.fileno()).st_size
    if head == GZIP_MAGIC:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")
    else:
        stream = raw
    return Source(name, stream, raw, size)


def read_lines(stream: IO[bytes], limit: int = LINE_MAX) -> Iterator[bytes]:
    """The lines of ``stream`` without their line ends.

    A line longer than ``limit`` comes out cut to ``limit + 1`` bytes (so
    the importer can tell it was too long); the rest of it is skipped.
    """
    readline = stream.readline
    while True:
        line = readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while True:  # skip the rest of the over-long line
                rest = readline(limit + 1)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line.rstrip(b"\r\n")
