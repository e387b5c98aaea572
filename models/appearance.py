"""Appearance signatures of image regions: colour layout plus gradient shape, cheap enough for a gateway.

Used to recognise a camera's recurring false positive (the same bush, coat or shadow) while letting a
real person standing at the same place through: the person changes both colour and shape of the box.
"""

from __future__ import annotations

import cv2
import numpy as np

SIGNATURE_SIZE = (24, 48)  # width, height of the normalised crop
_CELLS = (3, 6)  # spatial grid for both colour and gradient histograms


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
    """A unit-length float32 vector: per-cell mean Lab colour and per-cell gradient-orientation histograms."""
    patch = cv2.resize(crop(frame, box), SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(patch, cv2.COLOR_BGR2LAB).astype(np.float32) / 255.0
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    magnitude, angle = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    bins = (np.mod(angle, 180.0) / 22.5).astype(np.int32).clip(0, 7)
    cols, rows = _CELLS
    cw, ch = SIGNATURE_SIZE[0] // cols, SIGNATURE_SIZE[1] // rows
    colour, shape = [], []
    for r in range(rows):
        for c in range(cols):
            sl = (slice(r * ch, (r + 1) * ch), slice(c * cw, (c + 1) * cw))
            colour.append(lab[sl].reshape(-1, 3).mean(axis=0))
            shape.append(np.bincount(bins[sl].ravel(), weights=magnitude[sl].ravel(), minlength=8))
    colour_v = np.concatenate(colour)
    colour_v = colour_v - colour_v.mean()  # robust to global brightness (day/night drift)
    shape_v = np.concatenate(shape)
    parts = [v / (np.linalg.norm(v) + 1e-6) for v in (colour_v, shape_v)]
    out = np.concatenate(parts).astype(np.float32)
    return out / (np.linalg.norm(out) + 1e-6)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity in [-1, 1]; 1 means the same appearance."""
    return float(np.dot(a, b) / ((np.linalg.norm(a) * np.linalg.norm(b)) + 1e-9))
