"""``crumby geoip``: fetch a city database and swap it in atomically.

The new file is written next to the old one under a temporary name, unpacked,
opened with ``geoip2`` and asked a question, and only then renamed over the
old file with ``os.replace``. A failure at any step (HTTP error, dropped
connection, corrupt archive, a file that is not a city database, Ctrl-C)
removes the temporary files and leaves the old database byte for byte as it
was, so a running Crumby never sees a half-written file.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import http.client
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import geoip2.database
import geoip2.errors
import maxminddb

from crumby import __version__

#: DB-IP publishes City Lite monthly under a name with the month in it
DBIP_URL = "https://download.db-ip.com/free/dbip-city-lite-{month}.mmdb.gz"
#: MaxMind's download host; the path depends on whether an account id is given
MAXMIND_URL = "https://download.maxmind.com"
MAXMIND_EDITION = "GeoLite2-City"
CHUNK = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"
#: an address to look up after opening: proves the search tree can be walked
PROBE_ADDRESS = "1.1.1.1"


class GeoUpdateError(Exception):
    """Why the update failed, in one line; the old database is untouched."""


class Progress(Protocol):
    """What a progress display offers: ``update(n_bytes)`` inside a ``with``."""

    def update(self, n_steps: int) -> None: ...


#: makes a progress display for a download of ``total`` bytes (None: unknown)
ProgressFactory = Callable[[int | None, str], AbstractContextManager[Progress]]


@dataclass
class Source:
    """Where to fetch from: URLs tried in order (a 404 moves on to the next)."""

    label: str
    urls: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    def mask(self, text: str) -> str:
        """``text`` with every secret (and its URL-quoted form) replaced by stars."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "****")
                text = text.replace(urllib.parse.quote(secret, safe=""), "****")
        return text


@dataclass
class Installed:
    """What ``update`` put in place."""

    path: Path
    database_type: str
    build_date: dt.date
    size: int
    origin: str


def dbip_months(today: dt.date) -> list[str]:
    """This month and the previous one: early in a month the new file may not exist yet."""
    previous = today.replace(day=1) - dt.timedelta(days=1)
    return [f"{today:%Y-%m}", f"{previous:%Y-%m}"]


def utc_today() -> dt.date:
    """Today's UTC date, which names DB-IP's monthly file (tests pin it)."""
    return dt.datetime.now(dt.UTC).date()


def dbip_source(template: str = DBIP_URL, today: dt.date | None = None) -> Source:
    """DB-IP City Lite (CC BY 4.0, no account needed): this month's file, else last month's."""
    today = today or utc_today()
    months = dbip_months(today)
    return Source(f"DB-IP City Lite {months[0]}", [template.format(month=m) for m in months])


def maxmind_source(
    license_key: str,
    account_id: str | None = None,
    base_url: str = MAXMIND_URL,
    edition: str = MAXMIND_EDITION,
) -> Source:
    """MaxMind GeoLite2: the account-id endpoint with Basic auth, else the license-key URL."""
    base = base_url.rstrip("/")
    quoted = urllib.parse.quote(edition, safe="")
    if account_id:
        token = base64.b64encode(f"{account_id}:{license_key}".encode()).decode()
        return Source(
            f"MaxMind {edition}",
            [f"{base}/geoip/databases/{quoted}/download?suffix=tar.gz"],
            headers={"Authorization": f"Basic {token}"},
            secrets=(license_key, token),
        )
    query = urllib.parse.urlencode(
        {"edition_id": edition, "license_key": license_key, "suffix": "tar.gz"}
    )
    return Source(
        f"MaxMind {edition}", [f"{base}/app/geoip_download?{query}"], secrets=(license_key,)
    )


def explicit_source(value: str) -> Source:
    """A URL (http, https, file) or a local path given with ``--source``."""
    try:
        scheme = urllib.parse.urlsplit(value).scheme.lower()
    except ValueError as exc:
        raise GeoUpdateError(f"{value}: {exc}") from None
    if scheme in ("http", "https", "file", "ftp"):
        return Source(value, [value])
    path = Path(value).expanduser()
    if not path.is_file():
        raise GeoUpdateError(f"{value}: no such file")
    return Source(str(path), [path.resolve().as_uri()])


def choose_source(
    source: str | None,
    license_key: str | None,
    account_id: str | None,
    config: Mapping[str, Any],
) -> Source:
    """--source wins; then a MaxMind key (option, env or settings); else DB-IP City Lite."""
    if source:
        return explicit_source(source)
    license_key = license_key or config.get("MAXMIND_LICENSE_KEY")
    account_id = account_id or config.get("MAXMIND_ACCOUNT_ID")
    if license_key:
        return maxmind_source(
            str(license_key),
            str(account_id) if account_id else None,
            config.get("GEOIP_MAXMIND_URL") or MAXMIND_URL,
        )
    return dbip_source(config.get("GEOIP_DBIP_URL") or DBIP_URL)


def update(
    target: Path | str,
    source: Source,
    *,
    timeout: float = 60.0,
    progress: ProgressFactory | None = None,
) -> Installed:
    """Fetch ``source``, check it is a city database, and move it over ``target``."""
    # a symlinked setting (/etc/... -> /var/lib/...) updates the file it points to
    target = Path(os.path.realpath(Path(target).expanduser()))
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GeoUpdateError(f"cannot create folder {folder}: {exc.strerror or exc}") from None
    with _scratch(folder, target.name) as scratch:
        download = scratch()
        origin = _fetch(source, download, timeout, progress)
        database = _unpack(download, scratch)
        database_type, build_date = _validate(database)
        _install(database, target)
    return Installed(target, database_type, build_date, target.stat().st_size, origin)


@contextmanager
def _scratch(folder: Path, name: str) -> Iterator[Callable[[], Path]]:
    """Hand out temporary files in ``folder`` (so ``os.replace`` is atomic); remove leftovers."""
    made: list[Path] = []

    def new() -> Path:
        try:
            fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise GeoUpdateError(
                f"cannot write to folder {folder}: {exc.strerror or exc}"
            ) from None
        os.close(fd)
        made.append(Path(path))
        return Path(path)

    try:
        yield new
    finally:
        for path in made:
            with suppress(FileNotFoundError):
                path.unlink()


def _fetch(source: Source, dest: Path, timeout: float, progress: ProgressFactory | None) -> str:
    """Download the first URL that exists into ``dest``; return it (secrets masked)."""
    tried = []
    for url in source.urls:
        shown = source.mask(url)
        request = urllib.request.Request(url, headers={"User-Agent": f"crumby/{__version__}"})
        for name, value in source.headers.items():
            request.add_unredirected_header(name, value)  # never sent on to a redirect
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                _copy_response(response, dest, progress, source.label)
            return shown
        except urllib.error.HTTPError as exc:
            tried.append(f"{shown}: HTTP {exc.code} {exc.reason}")
            if exc.code == 404 and url != source.urls[-1]:
                continue
            if exc.code in (401, 403) and source.secrets:
                raise GeoUpdateError(
                    f"{source.label}: HTTP {exc.code} {exc.reason}: "
                    "the license key (or account id) was refused"
                ) from None
            raise GeoUpdateError("; ".join(tried)) from None
        except urllib.error.URLError as exc:
            raise GeoUpdateError(f"{shown}: {_reason(exc.reason, timeout)}") from None
        except TimeoutError as exc:
            raise GeoUpdateError(f"{shown}: {_reason(exc, timeout)}") from None
        except OSError as exc:
            raise GeoUpdateError(f"{shown}: {source.mask(_reason(exc, timeout))}") from None
        except http.client.IncompleteRead as exc:
            raise GeoUpdateError(
                f"{shown}: connection closed mid-download ({len(exc.partial)} bytes of a chunk)"
            ) from None
        except http.client.HTTPException as exc:  # the server does not speak HTTP properly
            raise GeoUpdateError(f"{shown}: bad HTTP answer: {type(exc).__name__}") from None
        except ValueError as exc:  # a URL urllib cannot use
            raise GeoUpdateError(f"{shown}: {exc}") from None
    raise GeoUpdateError("; ".join(tried) or f"{source.label}: nothing to download")


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _copy_response(
    response: IO[bytes],
    dest: Path,
    progress: ProgressFactory | None,
    label: str,
) -> None:
    """Stream the body to ``dest``; a body shorter than Content-Length is an error."""
    length = response.headers.get("Content-Length")  # type: ignore[attr-defined]
    total = int(length) if length and length.isdigit() else None
    received = 0
    bar = progress(total, f"Downloading {label}") if progress else _NoProgress()
    with bar as shown, open(dest, "wb") as out:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            received += len(chunk)
            shown.update(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    if total is not None and received < total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n_steps: int) -> None:
        """Nothing to show."""


def _unpack(path: Path, scratch: Callable[[], Path]) -> Path:
    """The .mmdb inside ``path``, recognised by content: tar(.gz), gzip, or plain."""
    if _is_tar(path):
        return _extract_from_tar(path, scratch())
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == GZIP_MAGIC:
        out = scratch()
        try:
            with gzip.open(path, "rb") as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise GeoUpdateError(f"corrupt gzip data: {exc}") from None
        except OSError as exc:  # the disk, not the data: say so
            raise GeoUpdateError(f"cannot write {out.parent}: {exc.strerror or exc}") from None
        if _is_tar(out):  # a .tar.gz whose first block was damaged would not get here
            return _extract_from_tar(out, scratch())
        return out
    return path


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, zlib.error):
        return False


def _extract_from_tar(archive: Path, out: Path) -> Path:
    """Copy the archive's .mmdb (the city one if several) to ``out``."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".mmdb")]
            if not members:
                raise GeoUpdateError("the archive holds no .mmdb file")
            cities = [m for m in members if "city" in m.name.rsplit("/", 1)[-1].lower()]
            chosen = (cities or members)[0]
            src = tar.extractfile(chosen)
            assert src is not None  # a regular file always has content
            with src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise GeoUpdateError(f"corrupt archive: {exc}") from None
    except OSError as exc:
        raise GeoUpdateError(f"cannot write {out.parent}: {exc.strerror or exc}") from None
    return out


def _validate(path: Path) -> tuple[str, dt.date]:
    """Open the file as geoip2 will and look an address up; refuse anything but a city DB."""
    try:
        reader = geoip2.database.Reader(str(path))
    except (maxminddb.InvalidDatabaseError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise GeoUpdateError(f"not a MaxMind-format database ({exc})") from None
    with reader:
        meta = reader.metadata()
        if "City" not in meta.database_type:
            raise GeoUpdateError(
                f"the download is a {meta.database_type} database, not a city database"
            )
        try:
            reader.city(PROBE_ADDRESS)
        except geoip2.errors.AddressNotFoundError:
            pass  # a small or regional database may not cover the probe: it still answered
        except (maxminddb.InvalidDatabaseError, ValueError, KeyError, TypeError) as exc:
            raise GeoUpdateError(f"the database is damaged: {exc}") from None
        built = dt.datetime.fromtimestamp(meta.build_epoch, dt.UTC).date()
        return meta.database_type, built


def _install(database: Path, target: Path) -> None:
    """Give the new file the old one's permissions (else 0644) and rename it into place."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644  # the web server's user must be able to read it
    try:
        with open(database, "rb") as fh:
            os.fsync(fh.fileno())  # the data is on disk before the name points at it
        os.chmod(database, mode)
        os.replace(database, target)
    except OSError as exc:
        raise GeoUpdateError(f"cannot replace {target}: {exc.strerror or exc}") from None
