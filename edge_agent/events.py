"""From qualifying tracks to one event per episode: one alert for a group walking by, not one per person."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_agent.tracker import Track

SNAPSHOT_MAX_WIDTH = 640


def encode_snapshot(frame: np.ndarray, quality: int = 80) -> bytes:
    """A JPEG small enough for an MQTT message (the full frame travels in the clip segment)."""
    height, width = frame.shape[:2]
    if width > SNAPSHOT_MAX_WIDTH:
        frame = cv2.resize(frame, (SNAPSHOT_MAX_WIDTH, round(height * SNAPSHOT_MAX_WIDTH / width)),
                           interpolation=cv2.INTER_AREA)
    for q in (quality, 65, 50, 35):
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok and buf.nbytes <= 90_000:
            return buf.tobytes()
    raise ValueError("snapshot does not fit in a candidate message")


@dataclass
class OpenEvent:
    event_id: str
    start_ts: float
    last_ts: float
    tracks: dict[int, Track] = field(default_factory=dict)
    best_score: float = -1.0
    best_ts: float = 0.0
    best_snapshot: bytes = b""
    best_boxes: list = field(default_factory=list)  # detections on the best frame
    reasons: list[str] = field(default_factory=list)

    def offer_frame(self, ts: float, frame: np.ndarray, score: float, boxes: list) -> None:
        """Keep the frame where the event's tracks scored best, as the snapshot."""
        if score > self.best_score:
            self.best_score = score
            self.best_ts = ts
            self.best_snapshot = encode_snapshot(frame)
            self.best_boxes = list(boxes)
