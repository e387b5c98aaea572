"""The one IoU every package uses."""

from __future__ import annotations

import pytest

import models.fp_memory
from models.geometry import iou


def test_identical_disjoint_and_partial_overlap() -> None:
    a = (0.0, 0.0, 10.0, 10.0)
    assert iou(a, a) == 1.0
    assert iou(a, (20.0, 20.0, 30.0, 30.0)) == 0.0
    assert iou(a, (5.0, 0.0, 15.0, 10.0)) == pytest.approx(50 / 150)


def test_touching_and_empty_boxes_have_no_overlap() -> None:
    assert iou((0.0, 0.0, 10.0, 10.0), (10.0, 0.0, 20.0, 10.0)) == 0.0
    assert iou((5.0, 5.0, 5.0, 5.0), (5.0, 5.0, 5.0, 5.0)) == 0.0


def test_reads_only_the_box_of_a_detection_row() -> None:
    assert iou([0.0, 0.0, 10.0, 10.0, 0.9], [0.0, 0.0, 10.0, 5.0, 0.1]) == pytest.approx(0.5)


def test_fp_memory_reexports_the_same_function() -> None:
    assert models.fp_memory.iou is iou
