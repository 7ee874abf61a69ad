"""A throw-away PostgreSQL server for the tests, from Debian's ``postgresql`` package.

``with postgres_server() as server:`` runs ``initdb`` in a new temporary folder,
starts ``postgres`` listening only on a Unix socket in that folder (no TCP port, so
several servers never collide), creates a database and yields its SQLAlchemy URL;
on exit it stops the server and deletes the folder. PostgreSQL refuses to run as
root, so under root the server runs as the ``postgres`` user (or ``nobody``) via
``setpriv``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "PostgreSQL is not installed: apt-get install postgresql"


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``, or None."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
               default=None)


@dataclass(frozen=True)
class Server:
    """A running server: its folder (data, socket, log) and one database."""

    folder: Path
    database: str

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database, through the Unix socket."""
        return f"postgresql+psycopg2://postgres@/{self.database}?host={self.folder}"

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _as_server_user() -> tuple[list[str], int | None, int | None]:
    """(command prefix, uid, gid) to run PostgreSQL's programs as a non-root user."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam(name)
            prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                      "--clear-groups"]
            return prefix, user.pw_uid, user.pw_gid
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user")


def _run(argv: list[str], folder: Path, timeout: float = 120) -> None:
    env = dict(os.environ, LC_ALL="C.UTF-8", HOME=str(folder))
    proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


@contextlib.contextmanager
def postgres_server(database: str = "gradebook") -> Iterator[Server]:
    """Start a private PostgreSQL server; yield it; stop it and delete its files."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError(INSTALL_HINT)
    prefix, uid, gid = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    if uid is not None:
        os.chown(folder, uid, gid)
    data = folder / "data"
    try:
        _run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
              "--auth=trust", "-E", "UTF8", "--no-sync"], folder)
        options = f"-c listen_addresses='' -c unix_socket_directories='{folder}' -c fsync=off"
        _run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
              "-o", options, "-w", "start"], folder)
        try:
            _run([*prefix, str(bindir / "createdb"), "-h", str(folder), "-U", "postgres",
                  database], folder)
            yield Server(folder, database)
        finally:
            _run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                 folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
