"""Box geometry shared by the gateway, the cloud verifier, tests and benchmarks: one definition of IoU."""

from __future__ import annotations

from collections.abc import Sequence

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
