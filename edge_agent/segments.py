"""The clip segment of an event, written locally as it happens (pre-roll included) so nothing waits in RAM."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from contracts import ClipRef
from models.checksums import sha256_file

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


CONTENT_TYPES = {".avi": "video/x-msvideo", ".mp4": "video/mp4", ".m4v": "video/mp4", ".mkv": "video/x-matroska",
                 ".mov": "video/quicktime", ".webm": "video/webm", ".ts": "video/mp2t"}


class SourceClipRecorder:
    """For one-minute clip files: the event's clip is the camera's own file, linked (or copied), not
    re-encoded. Costs no CPU on the gateway and keeps the camera's full quality and frame rate."""

    def __init__(self, root: Path, camera_id: str, source: Path, fps: float) -> None:
        self.root = Path(root)
        self.camera_id = camera_id
        self.source = Path(source)
        self.fps = fps
        self._event_id: str | None = None

    @property
    def recording(self) -> bool:
        return self._event_id is not None

    def push(self, ts: float, frame: np.ndarray) -> None:
        """Nothing to keep: the source file holds every frame."""

    def start(self, event_id: str) -> None:
        self._event_id = event_id

    def finish(self) -> ClipRef:
        if self._event_id is None:
            raise RuntimeError("no event is open")
        folder = self.root / self.camera_id
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{self._event_id}{self.source.suffix.lower()}"
        try:
            os.link(self.source, target)  # same file system: no copy at all
        except OSError:
            shutil.copyfile(self.source, target)
        self._event_id = None
        return ClipRef(kind="local", uri=str(target.relative_to(self.root)),
                       content_type=CONTENT_TYPES.get(target.suffix, "application/octet-stream"),
                       sha256=sha256_file(target), size_bytes=target.stat().st_size, offset_s=0.0,
                       fps=self.fps if self.fps > 0 else None)
