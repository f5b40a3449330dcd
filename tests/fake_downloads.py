"""A download server on 127.0.0.1 for ``crumby geoip`` tests: real HTTP, no internet.

Each route is a function of the request handler, so a test can answer with a
file, an error, a redirect, or misbehave on purpose (drop the connection half
way, stall, reset).
"""

from __future__ import annotations

import base64
import gzip
import io
import socket
import struct
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

Route = Callable[["Handler"], None]


@dataclass
class Seen:
    """One request the server received."""

    path: str
    headers: dict[str, str]


class Handler(BaseHTTPRequestHandler):
    server: FakeDownloads  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.server.seen.append(Seen(self.path, dict(self.headers.items())))
        route = self.server.routes.get(self.path) or self.server.routes.get(
            urllib.parse.urlsplit(self.path).path
        )
        if route is None:
            self.send_body(b"not found", status=404)
            return
        route(self)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""

    def send_body(self, body: bytes, status: int = 200, **headers: str) -> None:
        """A complete response with Content-Length."""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)


class FakeDownloads(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def serve(self, path: str, body: bytes, **headers: str) -> str:
        """Answer ``path`` with ``body``; return its URL."""
        self.routes[path] = lambda h: h.send_body(body, **headers)
        return self.url(path)

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


@contextmanager
def running() -> Iterator[FakeDownloads]:
    server = FakeDownloads()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --- misbehaving routes -------------------------------------------------------------


def drop_halfway(body: bytes) -> Route:
    """Promise the whole body, send half, close: an interrupted download."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.close_connection = True

    return route


def reset_halfway(body: bytes) -> Route:
    """Send half the body, then a TCP reset (the server crashed)."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
        h.close_connection = True

    return route


def not_http(h: Handler) -> None:
    """Something that is not a web server answers on that port."""
    h.wfile.write(b"SSH-2.0-OpenSSH_9.2p1\r\n")
    h.wfile.flush()
    h.close_connection = True


def chunked(body: bytes) -> Route:
    """A complete chunked response: no Content-Length, so the size is unknown up front."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))

    return route


def chunked_then_cut(body: bytes) -> Route:
    """A chunked response (no Content-Length) that stops inside a chunk."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        half = body[: len(body) // 2]
        h.wfile.write(b"%x\r\n" % len(body) + half)
        h.wfile.flush()
        h.close_connection = True

    return route


def stall(seconds: float, body: bytes = b"", after_bytes: int = 0) -> Route:
    """Send the headers and ``after_bytes`` of the body, then go quiet for ``seconds``."""

    def route(h: Handler) -> None:
        if after_bytes:
            h.send_response(200)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[:after_bytes])
            h.wfile.flush()
        time.sleep(seconds)
        h.close_connection = True

    return route


@dataclass
class FakeMaxMind:
    """MaxMind's two download endpoints, redirecting to storage as the real ones do."""

    archive: bytes
    license_key: str
    account_id: str = "123456"
    edition: str = "GeoLite2-City"
    storage_headers: list[dict[str, str]] = field(default_factory=list)

    def install(self, server: FakeDownloads) -> None:
        storage = f"/storage/{self.edition}_20261117.tar.gz"
        server.routes["/app/geoip_download"] = self.legacy
        server.routes[f"/geoip/databases/{self.edition}/download"] = self.authenticated
        server.routes[storage] = self.storage
        self.storage_path = storage

    def legacy(self, h: Handler) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(h.path).query))
        if query.get("license_key") != self.license_key:
            h.send_body(b"Invalid license key\n", status=401)
        elif query.get("edition_id") != self.edition or query.get("suffix") != "tar.gz":
            h.send_body(b"Invalid product ID or subscription expired\n", status=400)
        else:
            h.send_body(b"", status=302, Location=self.storage_path)

    def authenticated(self, h: Handler) -> None:
        expected = base64.b64encode(f"{self.account_id}:{self.license_key}".encode()).decode()
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(h.path).query))
        if h.headers.get("Authorization") != f"Basic {expected}":
            h.send_body(b'{"code":"ACCOUNT_ID_REQUIRED"}', status=401)
        elif query.get("suffix") != "tar.gz":
            h.send_body(b"bad suffix", status=400)
        else:
            h.send_body(b"", status=302, Location=self.storage_path)

    def storage(self, h: Handler) -> None:
        self.storage_headers.append(dict(h.headers.items()))
        h.send_body(self.archive, Content_Type="application/gzip")


# --- packaging a database the ways the real sources do ------------------------------


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


def tarball(
    files: dict[str, bytes], compression: str = "gz", folder: str = "GeoLite2-City_20261117"
) -> bytes:
    """A MaxMind-style archive: a dated folder holding the .mmdb and licence texts."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def folder_listing(folder: Path) -> list[str]:
    """Every name in ``folder``: temporary files left behind would show up here."""
    return sorted(p.name for p in folder.iterdir())
