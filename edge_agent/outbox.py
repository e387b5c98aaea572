"""Durable outbox: a candidate is written here before anything is sent, and leaves only once acknowledged.

SQLite in WAL mode with synchronous=FULL, so a crash or SIGKILL after `put` returns loses nothing.
Messages drain in the order they were accepted.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, seq);
"""


@dataclass(frozen=True)
class OutboxMessage:
    seq: int
    event_id: str
    topic: str
    payload: bytes
    attempts: int


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def put(self, event_id: str, topic: str, payload: bytes) -> bool:
        """Accept a message durably. Returns False if this event id was already accepted."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO outbox (event_id, topic, payload, created) VALUES (?, ?, ?, ?)",
                (event_id, topic, payload, time.time()),
            )
            return cur.rowcount == 1

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, topic, payload, attempts FROM outbox WHERE sent_at IS NULL "
                "ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [OutboxMessage(*row) for row in rows]

    def mark_sent(self, event_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET sent_at = ? WHERE event_id = ?", (time.time(), event_id))

    def mark_failed(self, event_id: str, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE event_id = ?",
                (error[:500], event_id),
            )

    def count_pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]

    def purge_sent(self, older_than_s: float) -> int:
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?", (time.time() - older_than_s,)
            )
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
