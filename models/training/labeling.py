"""The labeling rule: which mined regions become person or negative samples, and which are dropped.

- Items with person boxes (stills; clip frames with a `<clip>.boxes.csv` row at that time stamp): a region
  with IoU >= 0.5 with a person box is a person ("boxes"); IoU < 0.1 with every person box, a negative
  ("boxes"); in between, dropped as ambiguous.
- Items without a person (a still with person_present false; clip frames outside every person interval by
  more than the margin, 0.5 s by default, because interval ends are only good to about 0.2 s): every region
  is a negative ("negative_item").
- Frames inside `partial_body_intervals_s` or within the margin of an interval end: dropped.
- Clip frames inside a person interval without boxes: the frame's top region (highest detector score) is a
  person ("interval") with weight 0.5 -- a weak label: the detector's best guess is usually the person,
  not always; the other regions of such a frame are dropped. `interval_positives=none` drops them all.
- Feedback and review events (a human label on the whole event): "not-person" makes every region of the
  event's snapshot/frames a negative; "person" keeps the top region of each, weight 0.5, as for intervals;
  "unsure" is skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from models.geometry import iou
from models.learned.samples import MinedRegion

LABELING_RULE = __doc__.strip() if __doc__ else ""
POSITIVE_IOU = 0.5
NEGATIVE_IOU = 0.1
PART_OF_PERSON = 0.5  # share of a region's area inside a person box above which it is not a negative
WEAK_WEIGHT = 0.5

TruthKind = Literal["boxes", "no_person", "person_no_boxes", "ignore"]


@dataclass(frozen=True)
class FrameTruth:
    """What the labels say about one frame."""

    kind: TruthKind
    boxes: list[list[float]] = field(default_factory=list)
    reason: str = ""  # why a frame is ignored (for the report)


@dataclass(frozen=True)
class Labeled:
    region: MinedRegion
    label: Literal["person", "negative"]
    label_source: str
    weight: float


def _inside_share(region: Sequence[float], box: Sequence[float]) -> float:
    """The share of `region`'s area that lies inside `box`."""
    ix = max(0.0, min(region[2], box[2]) - max(region[0], box[0]))
    iy = max(0.0, min(region[3], box[3]) - max(region[1], box[1]))
    area = (region[2] - region[0]) * (region[3] - region[1])
    return ix * iy / area if area > 0 else 0.0


def hardness(features: dict[str, float]) -> float:
    """How strongly the detectors fired: the max over features named *_score (or `score`); 0 without one."""
    scores = [float(v) for k, v in features.items() if k == "score" or k.endswith("_score")]
    return max(scores) if scores else 0.0


def label_regions(regions: list[MinedRegion], truth: FrameTruth, *, interval_positives: str = "top1",
                  positive_source: str = "boxes", negative_source: str = "negative_item",
                  weak_source: str = "interval", box_negatives: bool = True) -> tuple[list[Labeled], Counter[str]]:
    """Labels for the regions of one frame, and the count of regions dropped, by reason."""
    dropped: Counter[str] = Counter()
    if not regions:
        return [], dropped
    if truth.kind == "ignore":
        dropped[truth.reason or "ignored frame"] += len(regions)
        return [], dropped
    if truth.kind == "no_person":
        return [Labeled(r, "negative", negative_source, 1.0) for r in regions], dropped
    if truth.kind == "person_no_boxes":
        if interval_positives == "none":
            dropped["person without boxes (interval positives off)"] += len(regions)
            return [], dropped
        top = max(regions, key=lambda r: hardness(r.features))
        dropped["person without boxes, not the top region"] += len(regions) - 1
        return [Labeled(top, "person", weak_source, WEAK_WEIGHT)], dropped
    out: list[Labeled] = []
    for r in regions:
        best = max((iou(r.box, b) for b in truth.boxes), default=0.0)
        if best >= POSITIVE_IOU:
            out.append(Labeled(r, "person", positive_source, 1.0))
        elif best < NEGATIVE_IOU:
            if max((_inside_share(r.box, b) for b in truth.boxes), default=0.0) >= PART_OF_PERSON:
                dropped["part of a person"] += 1
            elif not box_negatives:
                dropped["low IoU in a boxed clip frame (boxes may miss people)"] += 1
            else:
                out.append(Labeled(r, "negative", positive_source, 1.0))
        else:
            dropped["ambiguous IoU"] += 1
    return out, dropped


def _is_edge(value: float, duration: float) -> bool:
    """An interval end at the clip's start or end is not a transition: nothing to be unsure about there."""
    return value <= 0.05 or (duration > 0 and value >= duration - 0.05)


def clip_frame_truth(t: float, person_intervals: list[tuple[float, float]],
                     partial_intervals: list[tuple[float, float]], duration: float, margin: float,
                     boxes: list[list[float]] | None) -> FrameTruth:
    """The truth of a clip frame at `t`. `boxes`: None when the clip has no boxes file, else the boxes at t."""
    for a, b in partial_intervals:
        if a - margin <= t <= b + margin:
            return FrameTruth("ignore", reason="partial body")
    near_end = False
    inside = False
    for a, b in person_intervals:
        lo = a if _is_edge(a, duration) else a + margin
        hi = b if _is_edge(b, duration) else b - margin
        if lo <= t <= hi:
            inside = True
        elif a - margin <= t <= b + margin:
            near_end = True
    if near_end and not inside:
        return FrameTruth("ignore", reason="within the margin of a person interval end")
    if boxes:
        return FrameTruth("boxes", [list(b) for b in boxes])
    if inside:
        if boxes is not None:  # a boxes file without a row at this time: the frame is not annotated
            return FrameTruth("ignore", reason="person interval, frame without boxes in the boxes file")
        return FrameTruth("person_no_boxes")
    return FrameTruth("no_person")
