"""Read frames from a clip: (timestamp in seconds, BGR ndarray). Still images count as a one-frame clip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cloud.ports import ClipNotFound, ClipUnreadable

STILL_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


def read_frames(
    path: Path,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    every_s: float | None = None,
    fallback_fps: float = 25.0,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield frames lazily (a minute of 1080p does not fit in memory as a list).

    `start_s`/`end_s` bound the segment (seconds from the clip start), `every_s` thins it out.
    Raises ClipUnreadable if the file cannot be decoded or holds no frame in range.
    """
    import cv2

    if not path.is_file():
        raise ClipNotFound(f"clip {path} does not exist")
    if path.suffix.lower() in STILL_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ClipUnreadable(f"image {path.name} cannot be decoded")
        yield 0.0, image
        return

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ClipUnreadable(f"clip {path.name} cannot be opened as video")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and 0 < fps < 1000 else fallback_fps  # some containers report 0 or nonsense
        index, yielded, next_ts = 0, 0, start_s
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            ts = index / fps
            index += 1
            if ts < start_s:
                continue
            if end_s is not None and ts > end_s:
                break
            if every_s is not None and ts + 1e-9 < next_ts:
                continue
            next_ts = ts + (every_s or 0.0)
            yielded += 1
            yield ts, frame
        if yielded == 0:
            raise ClipUnreadable(f"clip {path.name} has no decodable frame in range")
    finally:
        cap.release()
