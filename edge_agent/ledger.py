"""Ledger of processed clips, so a restart (even after SIGKILL) neither re-announces nor skips a clip.

A clip is a local file identified by its resolved path, size and mtime_ns: a camera that rewrites a file
under the same name makes a new clip. For each clip the ledger keeps whether its processing finished and
which events it already accepted into the outbox, so an interrupted clip can be resumed without sending
those events again. Event ids are deterministic (`clip_event_id`), so re-processing the same clip gives
the same ids and the outbox's INSERT OR IGNORE and the cloud's idempotency catch any repeat.

Streams (rtsp://...) have no identity: `is_done` is False and `announced` empty for them, and the
recording calls do nothing.

SQLite in WAL mode with synchronous=FULL, like the outbox.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contracts.ids import _encode, validate_event_id
from edge_agent.sqlite_store import StoreWriteError, compact, open_database, writing

log = logging.getLogger(__name__)

_STREAM_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_MAX_ULID_MS = (1 << 48) - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    camera_id TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    frames INTEGER,
    candidates INTEGER,
    error TEXT,
    runs INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS clips_age ON clips (finished_at, started_at);
CREATE TABLE IF NOT EXISTS clip_events (
    path TEXT NOT NULL,
    event_id TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (path, event_id)
);
"""


class LedgerWriteError(StoreWriteError):
    """The clip ledger could not be written ("disk full", "read-only" or "I/O error")."""


@dataclass(frozen=True)
class ClipIdentity:
    path: str  # resolved
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        """One string naming this version of the file (a part of its events' ids)."""
        return f"{self.path}|{self.size}|{self.mtime_ns}"


@dataclass(frozen=True)
class AnnouncedEvent:
    event_id: str
    start_s: float  # offsets in the clip
    end_s: float


def is_stream(uri: str) -> bool:
    return bool(_STREAM_RE.match(uri))


def clip_identity(uri: str | Path) -> ClipIdentity:
    """Identity of a local clip file. Raises ValueError for a stream URL, FileNotFoundError if it is gone."""
    if isinstance(uri, str) and is_stream(uri):
        raise ValueError(f"{uri!r} is a stream, not a clip file: it has no identity in the ledger")
    path = Path(uri).resolve()
    st = path.stat()
    return ClipIdentity(str(path), st.st_size, st.st_mtime_ns)


def deterministic_event_id(wall_start: float, *parts: str) -> str:
    """A ULID whose time part is `wall_start` (epoch seconds of the event) and whose random part is a hash
    of `parts`: the same inputs always give the same id, and ids still sort by event time."""
    if not math.isfinite(wall_start) or wall_start < 0:
        raise ValueError(f"wall_start must be a finite epoch time >= 0, got {wall_start!r}")
    ms = int(wall_start * 1000)
    if ms > _MAX_ULID_MS:
        raise ValueError(f"wall_start {wall_start!r} is beyond the ULID time range")
    if not parts:
        raise ValueError("deterministic_event_id needs at least one part to hash")
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode()
        digest.update(len(data).to_bytes(4, "big"))  # length-prefixed: ("ab", "c") != ("a", "bc")
        digest.update(data)
    rand = int.from_bytes(digest.digest()[:10], "big")
    return validate_event_id(_encode(ms, 10) + _encode(rand, 16))


def clip_event_id(gateway_id: str, camera_id: str, clip: ClipIdentity, wall_start: float, start_offset_s: float) -> str:
    """The id of the event starting `start_offset_s` into `clip` (whose first frame is at `wall_start`).
    The offset is rounded to 0.1 s, so a re-run that lands on the same frame gives the same id."""
    offset = round(start_offset_s, 1)
    return deterministic_event_id(wall_start + offset, gateway_id, camera_id, clip.key, f"{offset:.1f}")


class ClipLedger:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = open_database(self.path, _SCHEMA, "clip ledger", LedgerWriteError)

    def _writing(self):
        return writing(self._db, self.path, "clip ledger", LedgerWriteError)

    @staticmethod
    def _key(uri: str) -> str | None:
        return None if is_stream(uri) else str(Path(uri).resolve())

    def _current(self, uri: str) -> ClipIdentity | None:
        try:
            return clip_identity(uri)
        except (ValueError, OSError):
            return None

    def _stored(self, path: str) -> tuple[int, int, float | None] | None:
        return self._db.execute("SELECT size, mtime_ns, finished_at FROM clips WHERE path = ?", (path,)).fetchone()

    def begin(self, uri: str, camera_id: str) -> None:
        """Processing of `uri` starts. A file rewritten since its last run starts afresh (its old events are
        forgotten); the same file again keeps the events it already announced. Raises FileNotFoundError."""
        if is_stream(uri):
            return
        ident = clip_identity(uri)
        with self._lock, self._writing():
            self._db.execute("BEGIN IMMEDIATE")
            row = self._stored(ident.path)
            if row is not None and (row[0], row[1]) == (ident.size, ident.mtime_ns):
                self._db.execute(
                    "UPDATE clips SET camera_id = ?, started_at = ?, finished_at = NULL, frames = NULL, "
                    "candidates = NULL, error = NULL, runs = runs + 1 WHERE path = ?",
                    (camera_id, self._clock(), ident.path),
                )
            else:
                self._db.execute("DELETE FROM clip_events WHERE path = ?", (ident.path,))
                self._db.execute(
                    "INSERT OR REPLACE INTO clips (path, size, mtime_ns, camera_id, started_at) VALUES (?, ?, ?, ?, ?)",
                    (ident.path, ident.size, ident.mtime_ns, camera_id, self._clock()),
                )
            self._db.execute("COMMIT")

    def is_done(self, uri: str) -> bool:
        """True once this version of the file finished processing (with or without an error)."""
        ident = self._current(uri)
        if ident is None:
            return False
        with self._lock:
            row = self._stored(ident.path)
        return row is not None and (row[0], row[1]) == (ident.size, ident.mtime_ns) and row[2] is not None

    def announced(self, uri: str) -> list[AnnouncedEvent]:
        """Events already accepted from this version of the file, by start offset."""
        ident = self._current(uri)
        if ident is None:
            return []
        with self._lock:
            row = self._stored(ident.path)
            if row is None or (row[0], row[1]) != (ident.size, ident.mtime_ns):
                return []
            rows = self._db.execute(
                "SELECT event_id, start_s, end_s FROM clip_events WHERE path = ? ORDER BY start_s, event_id",
                (ident.path,),
            ).fetchall()
        return [AnnouncedEvent(*r) for r in rows]

    def record_event(self, uri: str, event_id: str, start_s: float, end_s: float) -> None:
        """An event of `uri` was accepted into the outbox. Raises ValueError if `begin` was not called."""
        key = self._key(uri)
        if key is None:
            return
        with self._lock, self._writing():
            if self._stored(key) is None:
                raise ValueError(f"clip ledger: record_event for {uri!r} before begin()")
            self._db.execute(
                "INSERT OR REPLACE INTO clip_events (path, event_id, start_s, end_s, recorded_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, event_id, float(start_s), float(end_s), self._clock()),
            )

    def finish(self, uri: str, *, frames: int, candidates: int, error: str | None = None) -> None:
        """Processing of `uri` ended (an unreadable clip ends with `error`: it is not retried unless rewritten)."""
        key = self._key(uri)
        if key is None:
            return
        with self._lock, self._writing():
            cur = self._db.execute(
                "UPDATE clips SET finished_at = ?, frames = ?, candidates = ?, error = ? WHERE path = ?",
                (self._clock(), frames, candidates, error[:500] if error else None, key),
            )
            if cur.rowcount == 0:
                raise ValueError(f"clip ledger: finish for {uri!r} before begin()")

    def purge(self, older_than_s: float) -> int:
        """Forget clips finished (or abandoned) more than `older_than_s` ago; returns how many. A forgotten
        clip still in a watched folder would be processed again, under the same deterministic event ids."""
        cutoff = self._clock() - older_than_s
        with self._lock, self._writing():
            self._db.execute("BEGIN IMMEDIATE")
            where = "coalesce(finished_at, started_at) < ?"
            self._db.execute(f"DELETE FROM clip_events WHERE path IN (SELECT path FROM clips WHERE {where})",
                             (cutoff,))
            purged = self._db.execute(f"DELETE FROM clips WHERE {where}", (cutoff,)).rowcount
            self._db.execute("COMMIT")
            if purged:
                compact(self._db)
        return purged

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM clips").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
