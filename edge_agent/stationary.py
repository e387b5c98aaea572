"""Stationary objects already announced: a parked person-shaped thing is not re-announced every clip.

While the object stays in view its entry is refreshed, so it is remembered for as long as it stands there
plus the TTL, not for the TTL after its first announcement. Saving is throttled: refreshes happen on the
frame loop, and the file is rewritten at most once a `save_interval_s`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from models.fp_memory import iou

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
MAX_PER_CAMERA = 200


@dataclass
class Announced:
    box: Box  # normalised
    event_id: str
    at: float


class StationaryRegistry:
    def __init__(self, path: Path | None = None, match_iou: float = 0.6, save_interval_s: float = 60.0) -> None:
        self.path = path
        self.match_iou = match_iou
        self.save_interval_s = save_interval_s
        self.items: dict[str, list[Announced]] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self._saved_at = 0.0
        if path and path.exists():
            try:
                raw = json.loads(path.read_text())
                self.items = {cam: [Announced(tuple(a["box"]), a["event_id"], a["at"]) for a in lst]
                              for cam, lst in raw.items()}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("stationary registry unreadable; starting empty", extra={"path": str(path),
                                                                                   "error": str(exc)})

    def seen(self, camera_id: str, box: Box, ttl_s: float, now: float | None = None) -> str | None:
        """The event id that already announced this stationary box, if it is still remembered (and refresh it)."""
        now = time.time() if now is None else now
        with self._lock:
            for item in self.items.get(camera_id, []):
                if now - item.at <= ttl_s and iou(box, item.box) >= self.match_iou:
                    item.at = now
                    self._dirty = True
                    break
            else:
                return None
        self._maybe_save(now)
        return item.event_id

    def remember(self, camera_id: str, box: Box, event_id: str, ttl_s: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            keep = [a for a in self.items.get(camera_id, []) if now - a.at <= ttl_s]
            keep.append(Announced(box, event_id, now))
            self.items[camera_id] = keep[-MAX_PER_CAMERA:]
            self._dirty = True
        self._maybe_save(now, force=True)

    def _maybe_save(self, now: float, force: bool = False) -> None:
        if not self.path or not self._dirty or (not force and now - self._saved_at < self.save_interval_s):
            return
        with self._lock:
            doc = {cam: [{"box": list(a.box), "event_id": a.event_id, "at": a.at} for a in lst]
                   for cam, lst in self.items.items()}
            self._dirty = False
            self._saved_at = now
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            tmp.replace(self.path)
        except OSError as exc:  # a full disk must not stop detection; the registry lives on in memory
            self._dirty = True
            log.error("stationary registry not saved", extra={"path": str(self.path), "error": str(exc)})
