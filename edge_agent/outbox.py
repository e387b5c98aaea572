"""Durable outbox: a candidate is written here before anything is sent, and leaves only once acknowledged.

SQLite in WAL mode with synchronous=FULL, so a crash or SIGKILL after `put` returns loses nothing.
Messages drain in the order they were accepted. A write that cannot happen (disk full, read-only folder)
raises `OutboxWriteError` naming the cause; the outbox accepts again as soon as the cause is gone.
Acknowledged rows are purged after a retention (see edge_agent.retention), and the file shrinks with them.

`clip_upload` (nullable, added to older files on open) records the outcome of a candidate's clip upload
(edge_agent.clip_upload) as JSON `{"clip": <ClipRef or null>, "reason": <why not, or null>}`, so a restart
between the upload and the PUBACK publishes the recorded reference instead of uploading again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.sqlite_store import StoreWriteError, compact, file_bytes, open_database, writing

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at REAL,
    clip_upload TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, seq);
"""


class OutboxWriteError(StoreWriteError):
    """The outbox could not be written ("disk full", "read-only" or "I/O error" in `reason` and the message).
    The message in hand was NOT accepted; everything accepted before is still there."""


@dataclass(frozen=True)
class OutboxMessage:
    seq: int
    event_id: str
    topic: str
    payload: bytes
    attempts: int
    clip_upload: str | None = None  # the recorded clip-upload outcome (JSON), None until uploaded


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    sent: int  # acknowledged, kept until the retention purges them
    file_bytes: int  # database + WAL + shared memory on disk


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        checkpoint_interval_s: float = 300.0,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._checkpoint_interval_s = checkpoint_interval_s
        self._last_checkpoint = time.monotonic()
        self._lock = threading.Lock()
        self._db = open_database(self.path, _SCHEMA, "outbox", OutboxWriteError)
        self._migrate()

    def _migrate(self) -> None:
        """Bring an outbox file written by an older agent up to this schema (added nullable columns only)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)").fetchall()}
        if "clip_upload" not in columns:
            with self._writing():
                self._db.execute("ALTER TABLE outbox ADD COLUMN clip_upload TEXT")

    def _writing(self):
        return writing(self._db, self.path, "outbox", OutboxWriteError)

    def put(self, event_id: str, topic: str, payload: bytes) -> bool:
        """Accept a message durably. Returns False if this event id was already accepted.

        Raises OutboxWriteError if the disk is full or the database read-only: the message is not accepted.
        """
        with self._lock, self._writing():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO outbox (event_id, topic, payload, created) VALUES (?, ?, ?, ?)",
                (event_id, topic, payload, self._clock()),
            )
            return cur.rowcount == 1

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, topic, payload, attempts, clip_upload FROM outbox WHERE sent_at IS NULL "
                "ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [OutboxMessage(*row) for row in rows]

    def pending_event_ids(self) -> set[str]:
        """Event ids not yet acknowledged: their clips must stay on disk."""
        with self._lock:
            rows = self._db.execute("SELECT event_id FROM outbox WHERE sent_at IS NULL").fetchall()
        return {row[0] for row in rows}

    def mark_sent(self, event_id: str) -> None:
        with self._lock, self._writing():
            self._db.execute("UPDATE outbox SET sent_at = ? WHERE event_id = ?", (self._clock(), event_id))

    def record_clip_upload(self, event_id: str, outcome: str) -> None:
        """Durably record a candidate's clip-upload outcome (JSON) before it is published."""
        with self._lock, self._writing():
            self._db.execute("UPDATE outbox SET clip_upload = ? WHERE event_id = ?", (outcome, event_id))

    def mark_failed(self, event_id: str, error: str) -> None:
        with self._lock, self._writing():
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE event_id = ?",
                (error[:500], event_id),
            )

    def count_pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]

    def count_sent(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL").fetchone()[0]

    def stats(self) -> OutboxStats:
        with self._lock:
            pending, sent = self._db.execute(
                "SELECT COUNT(*) - COUNT(sent_at), COUNT(sent_at) FROM outbox"
            ).fetchone()
        return OutboxStats(pending=pending, sent=sent, file_bytes=file_bytes(self.path))

    def purge_sent(self, older_than_s: float) -> int:
        """Delete rows acknowledged more than `older_than_s` ago. Every `checkpoint_interval_s` at most, the
        freed pages go back to the file system and the WAL is emptied, so the files do not keep a burst's size."""
        with self._lock, self._writing():
            cur = self._db.execute(
                "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?", (self._clock() - older_than_s,)
            )
            purged = cur.rowcount
            if time.monotonic() - self._last_checkpoint >= self._checkpoint_interval_s:
                self._compact()
        return purged

    def checkpoint(self) -> None:
        """Give freed pages back and empty the WAL now (shutdown, benchmarks)."""
        with self._lock, self._writing():
            self._compact()

    def _compact(self) -> None:
        compact(self._db)
        self._last_checkpoint = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._db.close()
