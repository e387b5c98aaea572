"""Notifications appended to a JSONL file (the embedded default). Once-per-event comes from the event store."""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

from cloud.notify.message import Notification


class JsonlNotifier:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()

    def publish(self, notification: Notification) -> str:
        message_id = str(uuid.uuid4())
        line = {"message_id": message_id, "attributes": notification.attributes(),
                "message": json.loads(notification.model_dump_json())}
        data = (json.dumps(line, sort_keys=True) + "\n").encode()
        with self._lock:
            # One write of a whole line in append mode: concurrent writers never interleave lines.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        return message_id

    def read_all(self) -> list[dict]:
        """Every notification written so far (for the demo and tests)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
