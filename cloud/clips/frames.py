"""Read frames from a clip: (timestamp in seconds, BGR ndarray). Still images count as a one-frame clip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cloud.ports import ClipNotFound, ClipUnreadable
from models.video import VideoError, VideoReader

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

    `start_s`/`end_s` bound the segment (seconds from the clip's first frame, its presentation times as
    `models.video` reads them: the gateway's time base), `every_s` thins it out. `fallback_fps` is kept
    for callers; the reader only falls back on the nominal rate when a container has no time stamps.
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

    yielded = 0
    try:
        with VideoReader(path) as reader:
            for frame in reader.frames(1.0 / every_s if every_s else None, start_s=start_s, end_s=end_s):
                yielded += 1
                yield frame.ts, frame.image
    except VideoError as exc:
        raise ClipUnreadable(f"clip {path.name}: {exc}") from exc
    if yielded == 0:
        raise ClipUnreadable(f"clip {path.name} has no decodable frame in range")
