"""Per-camera detection filters: score, size, shape, inclusion zones and exclusion masks.

A box is placed by its bottom-centre point: that is where a person stands, so a zone drawn on the
ground means what the operator thinks it means even when the head crosses its edge.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry import Point, Polygon
from shapely.prepared import prep

from contracts import FilterSettings
from models.detector import Detection


@dataclass(frozen=True)
class FilterVerdict:
    detection: Detection
    kept: bool
    reason: str  # "" when kept


class DetectionFilter:
    def __init__(self, settings: FilterSettings, width: int, height: int) -> None:
        self.settings = settings
        self.width, self.height = width, height
        self._zones = [prep(Polygon([(x * width, y * height) for x, y in z])) for z in settings.zones]
        self._masks = [prep(Polygon([(x * width, y * height) for x, y in m])) for m in settings.masks]

    def judge(self, det: Detection, threshold: float, still: bool = False) -> FilterVerdict:
        if det.score < threshold:
            return FilterVerdict(det, False, f"score {det.score:.2f} < {threshold:.2f}")
        area = det.area / float(self.width * self.height)
        if area < self.settings.min_area:
            return FilterVerdict(det, False, f"area {area:.5f} < min {self.settings.min_area}")
        if area > self.settings.max_area and not still:
            return FilterVerdict(det, False, f"area {area:.3f} > max {self.settings.max_area}")
        # Stills are often close-ups where people are partly visible (sitting, cut by the edge): no shape
        # or largest-size rule; on video a frame-filling box is usually a lighting change.
        if not still and det.width > 0:
            aspect = det.height / det.width
            if aspect < self.settings.min_aspect:
                return FilterVerdict(det, False, f"aspect {aspect:.2f} < min {self.settings.min_aspect}")
            if aspect > self.settings.max_aspect:
                return FilterVerdict(det, False, f"aspect {aspect:.2f} > max {self.settings.max_aspect}")
        if not self._zones and not self._masks:  # the usual case: no geometry object per box per frame
            return FilterVerdict(det, True, "")
        foot = Point(*det.bottom_centre)
        if self._zones and not any(z.covers(foot) for z in self._zones):
            return FilterVerdict(det, False, "outside every inclusion zone")
        if any(m.covers(foot) for m in self._masks):
            return FilterVerdict(det, False, "inside an exclusion mask")
        return FilterVerdict(det, True, "")

    def apply(self, detections: list[Detection], threshold: float, still: bool = False) -> list[FilterVerdict]:
        return [self.judge(d, threshold, still) for d in detections]
