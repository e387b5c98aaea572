"""The one way a hypothesis becomes pixels for the learned stage, at training and at run time alike.

A square window centred on the box, with context around it, padded by edge replication where it leaves the
frame, resized to CROP_SIZE. Square because the backbone's input is square: squashing a tall person box into
it would teach the head shapes no camera produces.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.geometry import Xyxy

CROP_SIZE = 128  # stored and embedded side, px: larger gains nothing for boxes that are mostly under 100 px
CONTEXT = 0.25  # extra side on each side, as a fraction of the box's longer side


def context_crop(frame: np.ndarray, box: Xyxy, context: float = CONTEXT, size: int = CROP_SIZE) -> np.ndarray:
    """A size×size BGR crop centred on `box` (frame pixels), its longer side plus `context` on each side."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
        raise ValueError(f"expected a BGR frame, got shape {frame.shape}")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"empty box {box}")
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * context)
    side = max(side, 4.0)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left, top = round(cx - side / 2.0), round(cy - side / 2.0)
    n = round(side)
    height, width = frame.shape[:2]
    if left >= width or top >= height or left + n <= 0 or top + n <= 0:
        raise ValueError(f"box {box} lies outside the {width}x{height} frame")
    pad_l, pad_t = max(0, -left), max(0, -top)
    pad_r, pad_b = max(0, left + n - width), max(0, top + n - height)
    window = frame[max(0, top): min(height, top + n), max(0, left): min(width, left + n)]
    if pad_l or pad_t or pad_r or pad_b:
        window = cv2.copyMakeBorder(window, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if n > size else cv2.INTER_LINEAR
    return cv2.resize(window, (size, size), interpolation=interpolation)
