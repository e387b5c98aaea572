"""Where frames come from: a video file, a folder of one-minute clips, or an RTSP stream (OpenCV).

Frames carry their real timestamps (container time stamps), not index/fps: some codecs (tree.avi's
Cinepak) code far fewer frames than the nominal rate.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm", ".ts", ".mpg", ".mpeg", ".flv"}


class SourceError(RuntimeError):
    """A clip or stream that cannot be read; the agent logs it and goes on with the next one."""


@dataclass
class Frame:
    ts: float  # seconds from the clip start
    image: np.ndarray


@dataclass
class Clip:
    """One clip (or one stream session) with a lazily decoded, sampled frame iterator."""

    name: str
    uri: str
    wall_start: float  # epoch seconds of the clip's first frame (file mtime − duration, or now for streams)
    width: int
    height: int
    fps: float
    _capture: cv2.VideoCapture
    is_stream: bool = False

    def frames(self, sample_fps: float) -> Iterator[Frame]:
        """Decode, keeping one frame per 1/sample_fps seconds of container time (grab is cheap, retrieve is not)."""
        period = 1.0 / sample_fps
        next_due = 0.0
        decoded = 0
        start_wall = time.monotonic()
        try:
            while True:
                if not self._capture.grab():
                    break
                decoded += 1
                ts = self._timestamp(decoded, start_wall)
                if ts + 1e-6 < next_due:
                    continue
                ok, image = self._capture.retrieve()
                if not ok or image is None:
                    log.warning("frame could not be decoded", extra={"clip": self.name, "ts": round(ts, 3)})
                    continue
                next_due = max(next_due + period, ts + period * 0.5)
                yield Frame(ts=ts, image=image)
        finally:
            self._capture.release()
        if decoded == 0:
            raise SourceError(f"{self.uri}: no frame could be decoded (corrupt or unsupported video)")

    def _timestamp(self, decoded: int, start_wall: float) -> float:
        if self.is_stream:
            return time.monotonic() - start_wall
        msec = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        if msec > 0 or decoded == 1:
            return max(0.0, msec / 1000.0)
        return (decoded - 1) / self.fps if self.fps > 0 else 0.0


def open_clip(uri: str) -> Clip:
    is_stream = bool(re.match(r"^(rtsp|rtsps|rtmp|http|https)://", uri))
    if not is_stream:
        path = Path(uri)
        if not path.is_file():
            raise SourceError(f"{uri}: no such video file")
        if path.stat().st_size == 0:
            raise SourceError(f"{uri}: the file is empty")
    capture = cv2.VideoCapture(uri, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"{uri}: OpenCV cannot open it (corrupt, truncated or unsupported)")
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    if width <= 0 or height <= 0:
        capture.release()
        raise SourceError(f"{uri}: the video reports no frame size")
    name = uri if is_stream else Path(uri).name
    wall_start = time.time()
    if not is_stream:
        frames = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0
        duration = frames / fps if fps > 0 else 0.0
        wall_start = Path(uri).stat().st_mtime - duration
    return Clip(name, uri, wall_start, width, height, fps, capture, is_stream)


def iter_clip_uris(source: str) -> Iterator[str]:
    """A file, an RTSP/HTTP URL, or a folder of clips (sorted by name, which cameras stamp with the time)."""
    if re.match(r"^[a-z]+://", source):
        yield source
        return
    path = Path(source)
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.suffix.lower() in VIDEO_SUFFIXES and child.is_file():
                yield str(child)
        return
    yield source
