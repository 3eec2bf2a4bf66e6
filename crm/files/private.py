"""Files only the app's own system user may read: uploads, backups, the SQLite database.

Each is created with mode 0600 and then chmod-ed, so the process's umask never widens it;
folders the app creates for them are 0700. Where a backup operator needs to read them, give
the app's user a group and loosen the modes by hand (README, Security).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlalchemy as sa

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_folder(path: Path) -> Path:
    """Create `path` (and its parents) if missing; the folders created are 0700."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return path


def create_private(path: Path) -> int:
    """Open a new file at `path` for writing, mode 0600 whatever the umask; fails if it exists.
    Returns the file descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to the new file `path` (0600) and fsync it, so the bytes are on disk before
    anything refers to them."""
    fd = create_private(path)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private(path: Path) -> None:
    """chmod an existing file to 0600 (nothing if it is missing or already so)."""
    try:
        if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
            path.chmod(PRIVATE_FILE_MODE)
    except FileNotFoundError:
        pass


@sa.event.listens_for(sa.engine.Engine, "connect")
def _private_sqlite_files(dbapi_connection, _record) -> None:
    """SQLite creates its database file, and the -wal and -shm beside it, with the umask's
    mode (0644: readable by every local user). Each new connection makes them 0600."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    for _seq, name, filename in dbapi_connection.execute("PRAGMA database_list").fetchall():
        if name == "main" and filename:
            for suffix in ("", "-wal", "-shm", "-journal"):
                make_private(Path(filename + suffix))
