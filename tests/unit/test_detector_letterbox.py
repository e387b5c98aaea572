"""Letterboxed inputs (a model whose manifest says resize "letterbox", NanoDet): the region keeps its aspect
ratio at the top left of the input, and boxes map back through the padded square, clipped to the region."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.detector import decode_detections, letterboxed


def test_letterbox_keeps_the_aspect_ratio_at_the_top_left_and_pads_with_zeros() -> None:
    image = np.full((100, 200, 3), (10, 20, 30), dtype=np.uint8)  # BGR
    out = letterboxed(image, 64, 64)
    assert out.shape == (1, 64, 64, 3)
    assert (out[0, :32] == (30, 20, 10)).all()  # RGB, 200x100 -> 64x32
    assert (out[0, 32:] == 0).all()
    tall = letterboxed(np.full((300, 30, 3), 255, dtype=np.uint8), 64, 64)
    assert (tall[0, :, :6] == 255).all() and (tall[0, :, 7:] == 0).all()  # 30x300 -> 6x64 (rounded)


def test_letterbox_resizes_like_opencv() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    expected = cv2.cvtColor(cv2.resize(image, (64, 38), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(letterboxed(image, 64, 64)[0, :38], expected)


def test_boxes_map_back_through_the_padded_square_and_are_clipped_to_the_region() -> None:
    # Region 200x100 at (50, 20): the 64x64 input covers 200x200 of frame pixels from (50, 20).
    region = (50, 20, 200, 100)
    span = (50, 20, 200.0, 200.0)
    bounds = (50, 20, 250, 120)
    boxes = np.array([
        [0.10, 0.20, 0.30, 0.40],  # inside: y 40..80, x 90..130
        [0.40, 0.50, 0.70, 0.60],  # crosses the region's bottom (y 100..160): clipped at 120
        [0.60, 0.10, 0.90, 0.30],  # wholly in the padding (y 140..200): dropped
    ], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    dets = decode_detections(boxes, scores, span, 0.1, 10, 0.5, bounds=bounds)
    assert [tuple(round(v, 3) for v in d.as_xyxy()) for d in dets] == [(90.0, 40.0, 130.0, 80.0),
                                                                      (150.0, 100.0, 170.0, 120.0)]
    assert [d.score for d in dets] == pytest.approx([0.9, 0.8])
    # Without bounds the same outputs read as a stretched region would: nothing is clipped or dropped.
    assert len(decode_detections(boxes, scores, region, 0.1, 10, 0.5)) == 3
