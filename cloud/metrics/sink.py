"""Append-only JSONL file bounded by size: at `max_bytes` the file becomes `.1` (the older `.1` becomes `.2`,
and so on up to `backups`); the oldest is deleted. At most (backups + 1) × max_bytes on disk."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class RotatingJsonl:
    def __init__(self, path: Path, *, max_bytes: int = 5_000_000, backups: int = 3) -> None:
        if max_bytes < 1024:
            raise ValueError(f"max_bytes={max_bytes}: at least 1024")
        if not 0 <= backups <= 100:
            raise ValueError(f"backups={backups}: 0..100")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()

    def write(self, doc: dict[str, Any]) -> None:
        line = (json.dumps(doc, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                self._rotate()
            with open(self.path, "ab") as fh:
                fh.write(line)

    def _rotate(self) -> None:
        for i in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            newer = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
            if newer.exists():
                os.replace(newer, older)
        if self.backups == 0:
            self.path.unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """Oldest first: .N … .1, then the live file."""
        rotated = [self.path.with_name(f"{self.path.name}.{i}") for i in range(self.backups, 0, -1)]
        return [p for p in [*rotated, self.path] if p.exists()]
