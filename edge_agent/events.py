"""From qualifying tracks to one event per episode: one alert for a group walking by, not one per person."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from contracts.candidate import MAX_SNAPSHOT_BYTES
from edge_agent.tracker import Track

log = logging.getLogger("vigia.edge")

SNAPSHOT_MAX_WIDTH = 640
SNAPSHOT_TARGET_BYTES = 90_000  # under the contract's cap, with room for a JPEG encoder's variation
SNAPSHOT_QUALITIES = (65, 50, 35, 25)  # tried after the requested quality, before the picture shrinks
SNAPSHOT_SHRINK = 0.75  # each step down keeps 3/4 of the width and height
SNAPSHOT_MIN_SIDE = 16  # below this there is nothing left to show
assert SNAPSHOT_TARGET_BYTES <= MAX_SNAPSHOT_BYTES


def encode_snapshot(frame: np.ndarray, quality: int = 80, max_bytes: int = SNAPSHOT_TARGET_BYTES) -> bytes:
    """A JPEG small enough for an MQTT message (the full frame travels in the clip segment).

    Never fails for size: lower qualities first, then the picture shrinks step by step until it fits.
    The snapshot may be smaller than the frame; boxes stay in frame pixels (a reader scales them by
    `snapshot width / Candidate.frame_width`). Raises ValueError only for a frame that cannot be
    encoded at all (empty, wrong shape or depth).
    """
    if not 0 < max_bytes <= MAX_SNAPSHOT_BYTES:
        raise ValueError(f"max_bytes {max_bytes} is outside 1..{MAX_SNAPSHOT_BYTES}")
    frame = _encodable(frame)
    height, width = frame.shape[:2]
    scale = min(1.0, SNAPSHOT_MAX_WIDTH / width)
    qualities = (quality, *(q for q in SNAPSHOT_QUALITIES if q < quality))
    while True:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        picture = frame if size == (width, height) else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        for q in qualities:
            data = _jpeg(picture, q)
            if len(data) <= max_bytes:
                return data
        if max(size) <= SNAPSHOT_MIN_SIDE:
            raise ValueError(f"a {width}x{height} frame does not fit in {max_bytes} bytes even at {size[0]}x{size[1]}")
        scale *= SNAPSHOT_SHRINK


def _encodable(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.size == 0:
        raise ValueError("snapshot: the frame is empty")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise ValueError(f"snapshot: a frame of shape {frame.shape} is not a picture")
    if frame.dtype != np.uint8:
        raise ValueError(f"snapshot: frames are 8-bit, got {frame.dtype}")
    return frame


def _jpeg(picture: np.ndarray, quality: int) -> bytes:
    try:
        ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    except cv2.error as exc:
        raise ValueError(f"snapshot: the frame cannot be encoded as JPEG: {exc}") from exc
    if not ok:
        raise ValueError("snapshot: the frame cannot be encoded as JPEG")
    return buf.tobytes()


@dataclass
class OpenEvent:
    event_id: str
    start_ts: float
    last_ts: float
    tracks: dict[int, Track] = field(default_factory=dict)
    best_score: float = -1.0
    best_ts: float = 0.0
    best_snapshot: bytes = b""
    best_boxes: list = field(default_factory=list)  # detections on the best frame, in frame pixels
    reasons: list[str] = field(default_factory=list)

    def offer_frame(self, ts: float, frame: np.ndarray, score: float, boxes: list) -> None:
        """Keep the frame where the event's tracks scored best, as the snapshot.

        A frame that cannot be encoded is skipped (logged): the event keeps its previous best frame,
        so snapshot, boxes and time always describe the same picture.
        """
        if score <= self.best_score:
            return
        try:
            snapshot = encode_snapshot(frame)
        except ValueError as exc:
            log.warning("snapshot skipped", extra={"event_id": self.event_id, "ts": round(ts, 3), "error": str(exc)})
            return
        self.best_score = score
        self.best_ts = ts
        self.best_snapshot = snapshot
        self.best_boxes = list(boxes)
