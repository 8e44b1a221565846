"""A private PostgreSQL server for one test, so the test may stop and start it like a real restart.

The shared server on 5432 serves every other test; this one is a cluster of its own
(``initdb`` into a throwaway folder, ``pg_ctl`` on a free port, no Unix socket). PostgreSQL
refuses to run as root, so as root its commands run as the ``postgres`` OS user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.processes import free_port

FAST_AND_UNSAFE = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB "
                   "-c max_connections=100")


def postgres_binaries() -> Path | None:
    """The newest installed server's ``bin`` folder (Debian keeps them out of PATH), or None."""
    def version(pg_ctl: str) -> list[int]:
        return [int(part) for part in Path(pg_ctl).parent.parent.name.split(".") if part.isdigit()]

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def missing_reason() -> str | None:
    """Why a private cluster cannot run here, or None."""
    binaries = postgres_binaries()
    if binaries is None or not (binaries / "initdb").exists():
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres OS user to run the server as"
        if not shutil.which("runuser"):
            return "running as root without runuser to drop to the postgres user"
    return None


class PrivatePostgres:
    """``start()`` initialises on first use; ``stop()`` is ``pg_ctl stop -m fast`` (clients are cut, as in a
    restart); ``url(name)`` is a database on it; ``remove()`` stops it and deletes its files."""

    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="tqs-pg-"))
        self.data = self.folder / "data"
        self.log_path = self.folder / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.binaries / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=60, cwd=self.folder)

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' {FAST_AND_UNSAFE}",
                  "start")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        admin = psycopg2.connect(self.url(), connect_timeout=5)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        admin.close()
        return self.url(name)

    def remove(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
