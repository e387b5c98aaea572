"""Reading a candidate's clip segment (or still image) and choosing which of its frames to examine."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from contracts import Candidate

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
Frame = tuple[float, np.ndarray]


class ClipReadError(ValueError):
    """The clip or image cannot be read: missing, empty, corrupt or in a format OpenCV cannot decode."""


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def segment_time(candidate: Candidate, clip_offset_s: float) -> tuple[float, float, float]:
    """(event start, event end, best frame) in seconds from the segment start.

    The candidate's offsets count from the start of the source clip; the segment the gateway wrote
    starts `clip.offset_s` into it.
    """
    return (
        candidate.start_offset_s - clip_offset_s,
        candidate.end_offset_s - clip_offset_s,
        candidate.best_frame_offset_s - clip_offset_s,
    )


def clip_offset(candidate: Candidate) -> float:
    return candidate.clip.offset_s if candidate.clip is not None else 0.0


def select_indices(
    timestamps: Sequence[float], start: float, end: float, best: float, max_frames: int, margin: float
) -> list[int]:
    """The frame nearest the gateway's best frame plus frames evenly spaced over the event window.

    Falls back to the whole segment when no frame lies in the window (offsets that do not match the
    segment should not make the verifier blind).
    """
    if not timestamps:
        return []
    lo, hi = min(start, end) - margin, max(start, end) + margin
    inside = [i for i, t in enumerate(timestamps) if lo <= t <= hi]
    if not inside:
        log.warning("no frame in the event window; examining the whole segment",
                    extra={"window": [lo, hi], "segment": [timestamps[0], timestamps[-1]]})
        inside = list(range(len(timestamps)))
    best_index = min(inside, key=lambda i: abs(timestamps[i] - best))
    chosen = {best_index}
    rest = max_frames - 1
    if rest > 0 and len(inside) > 1:
        # Even spacing over the window, so a person who walks through it is sampled all the way.
        for k in range(rest):
            pos = round(k * (len(inside) - 1) / max(1, rest - 1)) if rest > 1 else len(inside) // 2
            chosen.add(inside[pos])
    # Evenly spaced picks may coincide with the best frame; fill up with the nearest unused frames.
    for i in sorted(inside, key=lambda i: abs(timestamps[i] - best)):
        if len(chosen) >= min(max_frames, len(inside)):
            break
        chosen.add(i)
    return sorted(chosen)


def read_image(path: Path) -> list[Frame]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ClipReadError(f"cannot read image {path}: missing, empty or not a JPEG/PNG OpenCV can decode")
    return [(0.0, image)]


def _timestamps(capture: cv2.VideoCapture) -> list[float]:
    fps = capture.get(cv2.CAP_PROP_FPS) or 5.0
    stamps: list[float] = []
    while capture.grab():
        t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        # Some containers report no time stamps; fall back to the nominal rate.
        stamps.append(t if t > 0 or not stamps else len(stamps) / fps)
    return stamps


def read_segment(path: Path, candidate: Candidate, max_frames: int, margin: float) -> tuple[list[Frame], int]:
    """Decode only the frames worth examining. Returns them and the number of frames in the segment."""
    if not path.is_file():
        raise ClipReadError(f"clip {path} does not exist")
    if path.stat().st_size == 0:
        raise ClipReadError(f"clip {path} is empty")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ClipReadError(f"cannot open clip {path}: not a video OpenCV can decode")
        stamps = _timestamps(capture)
    finally:
        capture.release()
    if not stamps:
        raise ClipReadError(f"clip {path} has no decodable frame")
    start, end, best = segment_time(candidate, clip_offset(candidate))
    wanted = select_indices(stamps, start, end, best, max_frames, margin)
    frames: list[Frame] = []
    capture = cv2.VideoCapture(str(path))
    try:
        # Second pass: grab is cheap, retrieve (decode) only what is examined.
        position = 0
        for index in wanted:
            while position <= index:
                if not capture.grab():
                    raise ClipReadError(f"clip {path} ended early at frame {position} of {len(stamps)}")
                position += 1
            ok, frame = capture.retrieve()
            if not ok or frame is None:
                raise ClipReadError(f"clip {path}: frame {index} does not decode")
            frames.append((stamps[index], frame))
    finally:
        capture.release()
    return frames, len(stamps)
