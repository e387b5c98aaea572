"""Box geometry shared by the gateway, the cloud verifier, tests and benchmarks: one definition of IoU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Xyxy = tuple[float, float, float, float]  # x1, y1, x2, y2; pixels or normalised, as long as both boxes agree


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 when both are empty.

    Only the first four values are read, so a detection row [x1, y1, x2, y2, score] works as it is.
    """
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`iou` of every box of `a` (N, 4+) with every box of `b` (M, 4+), as an (N, M) array, in one pass."""
    a = np.asarray(a, np.float64)[:, :4].reshape(-1, 4)
    b = np.asarray(b, np.float64)[:, :4].reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
