"""The clip segment of an event, written locally as it happens (pre-roll included) so nothing waits in RAM."""

from __future__ import annotations

import hashlib
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from contracts import ClipRef

PRE_ROLL_S = 2.0


class SegmentRecorder:
    """Keeps a short pre-roll of sampled frames; while an event is open, appends frames to its MJPG AVI."""

    def __init__(self, root: Path, camera_id: str, fps: float, quality: int = 90) -> None:
        self.root = Path(root)
        self.camera_id = camera_id
        self.fps = fps
        self.quality = quality
        self._pre: deque[tuple[float, np.ndarray]] = deque(maxlen=max(1, int(PRE_ROLL_S * fps) + 1))
        self._writer: cv2.VideoWriter | None = None
        self._path: Path | None = None
        self._offset = 0.0

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def push(self, ts: float, frame: np.ndarray) -> None:
        if self._writer is not None:
            self._write(frame)
        else:
            self._pre.append((ts, frame))

    def start(self, event_id: str) -> None:
        folder = self.root / self.camera_id
        folder.mkdir(parents=True, exist_ok=True)
        self._path = folder / f"{event_id}.avi"
        first = self._pre[0][1] if self._pre else None
        if first is None:
            raise RuntimeError("no frame to start a segment from")
        height, width = first.shape[:2]
        self._writer = cv2.VideoWriter(str(self._path), cv2.VideoWriter.fourcc(*"MJPG"), self.fps, (width, height))
        self._writer.set(cv2.VIDEOWRITER_PROP_QUALITY, self.quality)
        self._offset = self._pre[0][0]
        for _, frame in self._pre:
            self._write(frame)
        self._pre.clear()

    def _write(self, frame: np.ndarray) -> None:
        assert self._writer is not None
        self._writer.write(frame)

    def finish(self) -> ClipRef:
        if self._writer is None or self._path is None:
            raise RuntimeError("no segment is being recorded")
        self._writer.release()
        self._writer = None
        data = self._path.read_bytes()
        ref = ClipRef(
            kind="local",
            uri=str(self._path.relative_to(self.root)),
            content_type="video/x-msvideo",
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            offset_s=round(self._offset, 3),
            fps=self.fps,
        )
        self._path = None
        return ref
