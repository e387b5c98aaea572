"""The gateway's SQLite files (outbox, clip ledger): one way to open them, one way to fail clearly.

A gateway runs for months on a small disk. When a write cannot happen (disk full, read-only file system,
no write permission), callers get a `StoreWriteError` (an OSError) whose message says which, instead of a
raw sqlite3 error, and the connection stays usable once the cause is gone.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14

# Below this much free space an I/O error is taken for a full disk (SQLite needs whole pages).
_NEARLY_FULL_BYTES = 64 * 1024
# A WAL file is truncated back to this size after a checkpoint, so a burst does not leave it large.
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024


class StoreWriteError(OSError):
    """A gateway database could not be written. `reason` is "disk full", "read-only" or "I/O error"."""

    def __init__(self, code: int, reason: str, message: str, path: Path) -> None:
        super().__init__(code, message, str(path))
        self.reason = reason


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _diagnose(exc: BaseException, path: Path) -> tuple[int, str] | None:
    """(errno, reason) when `exc` means the file cannot be written; None for any other error."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return errno.ENOSPC, "disk full"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return errno.EROFS, "read-only"
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_FULL:
        return errno.ENOSPC, "disk full"
    if primary == _SQLITE_READONLY:
        return errno.EROFS, "read-only"
    if primary not in (_SQLITE_IOERR, _SQLITE_CANTOPEN) and not isinstance(exc, OSError):
        return None
    # SQLite does not say why a file could not be opened or written: ask the file system.
    folder = _existing(path.parent)
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY or not os.access(folder, os.W_OK):
            return errno.EROFS, "read-only"
        if shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES:
            return errno.ENOSPC, "disk full"
    except OSError:
        pass
    return errno.EIO, "I/O error"


def translate(exc: BaseException, path: Path, what: str, error_type: type[StoreWriteError]) -> StoreWriteError | None:
    """The clear error for a failed write to the `what` database at `path`, or None if `exc` is another kind."""
    found = _diagnose(exc, path)
    if found is None:
        return None
    code, reason = found
    hint = {"disk full": "free some space", "read-only": "make the folder writable"}.get(reason, "check the disk")
    message = f"{what} {path} cannot be written: {reason} ({exc}); {hint}, nothing already accepted is lost"
    return error_type(code, reason, message, path)


@contextmanager
def writing(db: sqlite3.Connection, path: Path, what: str, error_type: type[StoreWriteError]) -> Iterator[None]:
    """Wrap a write: a storage failure becomes `error_type`, and an open transaction is rolled back so the
    connection accepts writes again as soon as the disk does."""
    try:
        yield
    except (sqlite3.OperationalError, OSError) as exc:
        if db.in_transaction:
            try:
                db.rollback()
            except sqlite3.Error:
                pass
        clear = translate(exc, path, what, error_type)
        if clear is None:
            raise
        raise clear from exc


def open_database(path: Path, schema: str, what: str, error_type: type[StoreWriteError]) -> sqlite3.Connection:
    """WAL + synchronous=FULL (a SIGKILL after a write returns loses nothing), incremental auto-vacuum on a
    new file (so purged rows give their space back), and a bounded WAL."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    except (sqlite3.OperationalError, OSError) as exc:
        clear = translate(exc, path, what, error_type)
        if clear is None:
            raise
        raise clear from exc
    try:
        with writing(db, path, what, error_type):
            if db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
                db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # possible only before the first table exists
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db


def compact(db: sqlite3.Connection) -> None:
    """Give freed pages back to the file system and empty the WAL (call after deleting rows). Skipped while
    another connection holds the database: the next call tries again."""
    try:
        # executescript steps the pragma to the end; execute() would free a single page
        db.executescript("PRAGMA incremental_vacuum;")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.OperationalError as exc:
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF not in (_SQLITE_BUSY, _SQLITE_LOCKED):
            raise


def file_bytes(path: Path) -> int:
    """Size of a database with its WAL and shared-memory files."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += os.stat(f"{path}{suffix}").st_size
        except FileNotFoundError:
            pass
    return total
