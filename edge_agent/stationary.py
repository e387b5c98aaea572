"""Stationary objects already announced: a parked person-shaped thing is not re-announced every clip."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from models.fp_memory import iou

Box = tuple[float, float, float, float]


@dataclass
class Announced:
    box: Box  # normalised
    event_id: str
    at: float


class StationaryRegistry:
    def __init__(self, path: Path | None = None, match_iou: float = 0.6) -> None:
        self.path = path
        self.match_iou = match_iou
        self.items: dict[str, list[Announced]] = {}
        if path and path.exists():
            raw = json.loads(path.read_text())
            self.items = {cam: [Announced(tuple(a["box"]), a["event_id"], a["at"]) for a in lst]
                          for cam, lst in raw.items()}

    def seen(self, camera_id: str, box: Box, ttl_s: float, now: float | None = None) -> str | None:
        """The event id that already announced this stationary box, if it is still remembered."""
        now = time.time() if now is None else now
        for item in self.items.get(camera_id, []):
            if now - item.at <= ttl_s and iou(box, item.box) >= self.match_iou:
                return item.event_id
        return None

    def remember(self, camera_id: str, box: Box, event_id: str, ttl_s: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        keep = [a for a in self.items.get(camera_id, []) if now - a.at <= ttl_s]
        keep.append(Announced(box, event_id, now))
        self.items[camera_id] = keep[-200:]
        self._save()

    def _save(self) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {cam: [{"box": list(a.box), "event_id": a.event_id, "at": a.at} for a in lst]
               for cam, lst in self.items.items()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.path)
