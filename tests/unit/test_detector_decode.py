"""The network's outputs become detections in one array pass; it must give exactly what the box-by-box rule did."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.detector import Detection, decode_detections, nms


def decode_box_by_box(boxes: np.ndarray, scores: np.ndarray, region: tuple[int, int, int, int], floor: float,
                      max_candidates: int, nms_iou: float) -> list[Detection]:
    """The rule as it was written first: one box at a time, then NMS over Detection objects."""
    keep = np.flatnonzero(scores >= floor)
    if keep.size > max_candidates:
        keep = keep[np.argsort(-scores[keep])[:max_candidates]]
    x0, y0, w, h = region
    out = []
    for i in keep:
        ymin, xmin, ymax, xmax = (float(v) for v in np.clip(boxes[i], 0.0, 1.0))
        if xmax <= xmin or ymax <= ymin:
            continue
        out.append(Detection(x0 + xmin * w, y0 + ymin * h, x0 + xmax * w, y0 + ymax * h, float(scores[i])))
    return nms_object_by_object(out, nms_iou)


def nms_object_by_object(detections: list[Detection], iou: float) -> list[Detection]:
    """NMS as it was written first, over Detection objects."""
    if len(detections) <= 1:
        return list(detections)
    keep = cv2.dnn.NMSBoxes([[d.x1, d.y1, d.width, d.height] for d in detections], [d.score for d in detections],
                            0.0, iou)
    return sorted((detections[int(i)] for i in np.asarray(keep).ravel()), key=lambda d: -d.score)


def network_outputs(rng: np.random.Generator, anchors: int) -> tuple[np.ndarray, np.ndarray]:
    centre = rng.uniform(-0.1, 1.1, (anchors, 2))
    size = rng.uniform(-0.05, 0.4, (anchors, 2))  # some negative: boxes with no area, dropped
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(np.float32)
    scores = rng.choice(np.linspace(0, 1, 41), anchors).astype(np.float32)  # repeated scores: ties
    # near-duplicates of a few boxes, so that NMS has work to do
    boxes[anchors // 2:] = boxes[: anchors - anchors // 2] + rng.normal(0, 0.01, (anchors - anchors // 2, 4))
    return boxes, scores


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(("floor", "max_candidates"), [(0.05, 200), (0.3, 200), (0.05, 25)])
def test_array_pass_equals_the_box_by_box_rule(seed: int, floor: float, max_candidates: int) -> None:
    rng = np.random.default_rng(seed)
    boxes, scores = network_outputs(rng, anchors=int(rng.integers(0, 400)))
    region = (int(rng.integers(0, 300)), int(rng.integers(0, 200)), int(rng.integers(50, 800)),
              int(rng.integers(50, 600)))
    expected = decode_box_by_box(boxes, scores, region, floor, max_candidates, 0.5)
    assert decode_detections(boxes, scores, region, floor, max_candidates, 0.5) == expected


def test_one_box_and_none() -> None:
    boxes = np.array([[0.1, 0.2, 0.5, 0.4], [0.3, 0.3, 0.2, 0.9]], np.float32)  # the second has no height
    scores = np.array([0.9, 0.8], np.float32)
    assert decode_detections(boxes, scores, (10, 20, 100, 50), 0.05, 200, 0.5) == [
        Detection(10 + float(np.float32(0.2)) * 100, 20 + float(np.float32(0.1)) * 50,
                  10 + float(np.float32(0.4)) * 100, 20 + float(np.float32(0.5)) * 50, float(np.float32(0.9)))]
    assert decode_detections(boxes, scores, (0, 0, 100, 50), 0.95, 200, 0.5) == []


@pytest.mark.parametrize("seed", range(10))
def test_nms_over_objects_is_the_array_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes, scores = network_outputs(rng, anchors=int(rng.integers(0, 120)))
    dets = [Detection(*(float(v) * 500 for v in (b[1], b[0], b[3], b[2])), float(s))
            for b, s in zip(boxes, scores, strict=True) if b[3] > b[1] and b[2] > b[0]]
    assert nms(dets, 0.5) == nms_object_by_object(dets, 0.5)
