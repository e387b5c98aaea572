"""Appearance signatures of image regions: a coarse colour layout, cheap enough for a gateway.

Used to recognise a camera's recurring false positive (the same bush, coat or shadow) while letting a
real person standing at the same place through: the person changes the colour layout of the box.
The layout is coarse (8×16 cells of Lab colour) so a bush swaying a little or JPEG noise still matches;
lightness is centred so the same coat at dusk still matches.
"""

from __future__ import annotations

import cv2
import numpy as np

SIGNATURE_SIZE = (8, 16)  # width, height of the colour layout
_SCALE = 5.0  # mean absolute Lab difference (0..1 units) of 0.2 means "nothing alike"


def crop(frame: np.ndarray, box: tuple[float, float, float, float], pad: float = 0.05) -> np.ndarray:
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = box
    pw, ph = (x2 - x1) * pad, (y2 - y1) * pad
    xa, ya = max(0, int(x1 - pw)), max(0, int(y1 - ph))
    xb, yb = min(width, int(np.ceil(x2 + pw))), min(height, int(np.ceil(y2 + ph)))
    if xb - xa < 2 or yb - ya < 2:
        raise ValueError(f"box {box} is outside or too small for a {width}x{height} frame")
    return frame[ya:yb, xa:xb]


def signature(frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """A float32 vector: the region's Lab colour layout, lightness centred."""
    patch = crop(frame, box)
    if patch.ndim == 2:
        patch = cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR)
    small = cv2.resize(cv2.GaussianBlur(patch, (3, 3), 0), SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32) / 255.0
    lab[..., 0] -= lab[..., 0].mean()
    return lab.ravel()


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """1 means the same appearance, 0 nothing alike."""
    if a.shape != b.shape:
        return 0.0
    return float(max(0.0, 1.0 - _SCALE * float(np.mean(np.abs(a - b)))))
