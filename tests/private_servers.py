"""MariaDB and PostgreSQL servers of a test's own: own port, own data folder, own processes.

Tests that stop, freeze (SIGSTOP) or restart a database use these, never the
shared servers on 3306/5432 that every other test (and other engineers) use.
``bench/soak.py`` uses them too. Each server runs in its own process group,
so freezing it freezes every one of its processes (PostgreSQL's backends too).
As root, the servers run as their Debian users (``mysql``, ``postgres``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/usr/bin"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_user(user: str) -> list[str]:
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _stopped(pid: int) -> bool:
    """True when every thread of ``pid`` is stopped (or the process is gone)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for task in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] not in "TtZX":
            return False
    return True


class PrivateServer:
    """A database server this process starts, freezes, thaws, restarts and removes."""

    kind = ""
    user = ""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"crumby-{self.kind}-"))
        self.folder.chmod(0o755)
        self.data = self.folder / "data"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.owner = self.user if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.log = self.folder / "server.log"
        # the server writes its socket and pid file here
        shutil.chown(self.folder, self.owner)
        self.initialise()

    # ---- what differs per database -------------------------------------------------------

    def initialise(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def url(self, database: str) -> str:
        raise NotImplementedError

    def create_database(self, name: str) -> None:
        raise NotImplementedError

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.popen_user(),
            )
        deadline = time.monotonic() + 60
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def ready(self) -> bool:
        raise NotImplementedError

    def popen_user(self) -> dict:
        """Run as ``owner`` (root may not run PostgreSQL), without a wrapper process: the
        server must lead its own process group, so that freezing the group freezes it."""
        return {}

    def processes(self) -> list[int]:
        """The server's process and all its descendants (PostgreSQL's backends each lead
        a process group of their own, so the server's group alone would miss them)."""
        assert self.proc is not None
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
        found = [self.proc.pid]
        for pid in found:
            found += [child for child, parent in parents.items() if parent == pid]
        return found

    def signal(self, sig: int) -> None:
        """Send a signal to every process of the server, the parent first."""
        for pid in self.processes():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def freeze(self) -> None:
        """SIGSTOP: connections stay open (the kernel still answers TCP), nothing replies.

        The parent stops first, so it forks no new process while the rest stop.
        A signal takes effect a moment after ``kill`` returns: wait until every
        thread of every process is stopped, or a query sent at once may still run.
        """
        self.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not all(_stopped(pid) for pid in self.processes()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not stop")
            time.sleep(0.01)

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        """A clean, fast shutdown (SIGTERM to the server, then wait)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.thaw()
        self.proc.send_signal(signal.SIGTERM if self.kind == "mariadb" else signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivateServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class PrivateMariaDB(PrivateServer):
    """``mariadbd`` with root and no password, on 127.0.0.1 only."""

    kind = "mariadb"
    user = "mysql"

    def initialise(self) -> None:
        self.data.mkdir()
        shutil.chown(self.data, self.owner)
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.data}",
                f"--user={self.owner}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )

    def command(self) -> list[str]:
        return [
            "mariadbd",
            "--no-defaults",
            f"--datadir={self.data}",
            f"--user={self.owner}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.folder / 'mysqld.sock'}",
            f"--pid-file={self.folder / 'mysqld.pid'}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=200",
        ]

    def ready(self) -> bool:
        try:
            import pymysql

            pymysql.connect(
                host="127.0.0.1", port=self.port, user="root", connect_timeout=1, read_timeout=2
            ).close()
            return True
        except Exception:
            return False

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}?charset=utf8mb4"

    def create_database(self, name: str) -> None:
        import pymysql

        connection = pymysql.connect(host="127.0.0.1", port=self.port, user="root")
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        finally:
            connection.close()


class PrivatePostgreSQL(PrivateServer):
    """``postgres`` with trust authentication for user postgres, on 127.0.0.1 only."""

    kind = "postgresql"
    user = "postgres"

    def initialise(self) -> None:
        subprocess.run(
            [
                *_as_user(self.owner),
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )

    def popen_user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(self.owner)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def command(self) -> list[str]:
        return [
            str(PG_BIN / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.folder),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
        ]

    def ready(self) -> bool:
        try:
            import psycopg

            psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=2,
            ).close()
            return True
        except Exception:
            return False

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')


SERVERS = {"mysql": PrivateMariaDB, "postgresql": PrivatePostgreSQL}


@contextmanager
def app_on_private_server(
    kind: str, database: str, site: str, public: bool = False, **config: object
) -> Iterator[tuple[Flask, PrivateServer]]:
    """A Crumby app on a new server of ``kind`` (its own database ``database``, the site
    ``site`` registered), and the server, to freeze or restart; both gone afterwards."""
    from crumby import create_app
    from crumby.database import ensure_schema
    from crumby.extensions import db
    from crumby.ingest.writer import stop_writer
    from crumby.sites import add_site

    server = SERVERS[kind]()
    try:
        server.start()
        server.create_database(database)
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": server.url(database),
                "GEOIP2_DATABASE_NAME": "/nonexistent.mmdb",
                **config,
            }
        )
        with app.app_context():
            ensure_schema()
            add_site(db.session.connection(), site, public=public)
            db.session.commit()
        yield app, server
        server.thaw()
        stop_writer(app)
        with app.app_context():
            db.engine.dispose()
    finally:
        server.remove()
