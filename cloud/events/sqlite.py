"""Event store in SQLite (the embedded default): same semantics as the DynamoDB adapter."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cloud.events.record import EventRecord, iso_utc
from contracts import validate_event_id

if TYPE_CHECKING:
    from cloud.feedback.model import FeedbackEntry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    camera_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    score_bucket TEXT NOT NULL,
    score REAL NOT NULL,
    expires_at INTEGER NOT NULL,
    doc TEXT NOT NULL,
    notified INTEGER NOT NULL DEFAULT 0,
    notified_at TEXT,
    notify_claimed_at REAL,
    notification_id TEXT
);
CREATE INDEX IF NOT EXISTS events_camera_time ON events (camera_id, started_at);
CREATE INDEX IF NOT EXISTS events_score_band ON events (score_bucket, score);
CREATE TABLE IF NOT EXISTS processing_claims (
    event_id TEXT PRIMARY KEY,
    claimed_at REAL NOT NULL
);
"""
# Added with feedback (older stores get them on open): what `query` filters on besides the indexed keys.
_ADDED_COLUMNS = {"decision": "TEXT", "label": "TEXT"}
_ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS events_time ON events (started_at);
CREATE INDEX IF NOT EXISTS events_label_time ON events (label, started_at);
"""
_COLUMNS = "doc, notified, notified_at, notify_claimed_at, notification_id"


class SqliteEventStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged event survives a crash
        self._db.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        have = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")
        # rows written before the columns existed: their decision and label are in the document
        self._db.execute("UPDATE events SET decision = json_extract(doc, '$.decision') WHERE decision IS NULL")
        self._db.execute("UPDATE events SET label = json_extract(doc, '$.label') "
                         "WHERE label IS NULL AND json_extract(doc, '$.label') IS NOT NULL")
        self._db.executescript(_ADDED_INDEXES)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _row(row: tuple) -> EventRecord:
        doc, notified, notified_at, claimed, notification_id = row
        return EventRecord.model_validate_json(doc).model_copy(
            update={"notified": bool(notified), "notified_at": notified_at,
                    "notify_claimed_at": claimed, "notification_id": notification_id}
        )

    def put_if_absent(self, record: EventRecord) -> bool:
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO events (event_id, camera_id, started_at, score_bucket, score, "
                "expires_at, doc, notified, notified_at, notify_claimed_at, notification_id, decision, label) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.event_id, record.camera_id, record.started_at, record.score_bucket, record.score,
                 record.expires_at, record.model_dump_json(), int(record.notified), record.notified_at,
                 record.notify_claimed_at, record.notification_id, record.decision, record.label),
            )
            return cur.rowcount == 1

    def get(self, event_id: str) -> EventRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE event_id = ?", (validate_event_id(event_id),)
            ).fetchone()
        return self._row(row) if row else None

    def claim_processing(self, event_id: str, now: datetime, lease_s: float) -> bool:
        """Insert the claim, or take over one older than the lease (its worker presumed crashed)."""
        ts = now.timestamp()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO processing_claims (event_id, claimed_at) VALUES (?, ?) "
                "ON CONFLICT (event_id) DO UPDATE SET claimed_at = excluded.claimed_at "
                "WHERE processing_claims.claimed_at < ?",
                (validate_event_id(event_id), ts, ts - lease_s),
            )
            return cur.rowcount == 1

    def release_processing(self, event_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM processing_claims WHERE event_id = ?", (event_id,))

    def claim_notification(self, event_id: str, now: datetime, lease_s: float) -> bool:
        ts = now.timestamp()
        with self._lock:
            cur = self._db.execute(
                "UPDATE events SET notify_claimed_at = ? WHERE event_id = ? AND notified = 0 "
                "AND (notify_claimed_at IS NULL OR notify_claimed_at < ?)",
                (ts, event_id, ts - lease_s),
            )
            return cur.rowcount == 1

    def release_notification(self, event_id: str, claimed_at: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE events SET notify_claimed_at = NULL WHERE event_id = ? AND notified = 0 "
                "AND notify_claimed_at = ?",
                (event_id, claimed_at),
            )

    def mark_notified(self, event_id: str, at: datetime, message_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE events SET notified = 1, notified_at = ?, notification_id = ? WHERE event_id = ?",
                (iso_utc(at), message_id, event_id),
            )

    def by_camera(self, camera_id: str, since: datetime, until: datetime, limit: int = 100) -> list[EventRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE camera_id = ? AND started_at BETWEEN ? AND ? "
                "ORDER BY started_at LIMIT ?",
                (camera_id, iso_utc(since), iso_utc(until), limit),
            ).fetchall()
        return [self._row(r) for r in rows]

    def by_score_band(self, score_bucket: str, low: float, high: float, limit: int = 100) -> list[EventRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE score_bucket = ? AND score BETWEEN ? AND ? "
                "ORDER BY score LIMIT ?",
                (score_bucket, low, high, limit),
            ).fetchall()
        return [self._row(r) for r in rows]

    def set_feedback(self, event_id: str, entry: FeedbackEntry) -> EventRecord:
        """Store `entry` as the event's latest label (history bounded); the same label again changes nothing.
        Raises UnknownEvent for an id the store does not hold."""
        from cloud.feedback.model import UnknownEvent

        event_id = validate_event_id(event_id)
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM events WHERE event_id = ?", (event_id,)).fetchone()
            if row is None:
                raise UnknownEvent(event_id)
            record = self._row(row)
            updated = record.with_feedback(entry)
            if updated is None:
                return record
            self._db.execute("UPDATE events SET doc = ?, label = ? WHERE event_id = ?",
                             (updated.model_dump_json(), updated.label, event_id))
        return updated

    def query(
        self,
        camera_id: str | None = None,
        decision: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        label: str | None = None,
        score_low: float | None = None,
        score_high: float | None = None,
        limit: int = 100,
    ) -> list[EventRecord]:
        """Events matching every filter given, newest first (by start time)."""
        where, args = [], []
        for column, value in (("camera_id", camera_id), ("decision", decision), ("label", label)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("started_at >= ?")
            args.append(iso_utc(since))
        if until is not None:
            where.append("started_at <= ?")
            args.append(iso_utc(until))
        if score_low is not None:
            where.append("score >= ?")
            args.append(score_low)
        if score_high is not None:
            where.append("score <= ?")
            args.append(score_high)
        sql = f"SELECT {_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, event_id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, max(0, int(limit)))).fetchall()
        return [self._row(r) for r in rows]
