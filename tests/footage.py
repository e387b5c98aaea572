"""Cutting short clips from real footage for tests (written to tmp dirs, never committed)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def first_seconds(src: Path, seconds: float) -> tuple[list[np.ndarray], float]:
    """The decoded frames of the first `seconds` of a clip, and its frame rate."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while len(frames) < int(seconds * fps):
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def cut(src: Path, dst: Path, seconds: float) -> Path:
    """The first `seconds` of `src` as an MJPG AVI at `dst`."""
    frames, fps = first_seconds(src, seconds)
    return write_clip(dst, frames, fps)


def ramp_clip(path: Path, frames: int, fps: float, step: int = 1) -> Path:
    """A tiny 64x48 MJPG clip whose frame i is uniformly grey i * step: each frame names itself."""
    return write_clip(path, [np.full((48, 64, 3), i * step, np.uint8) for i in range(frames)], fps)
