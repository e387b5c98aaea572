"""The one IoU every package uses."""

from __future__ import annotations

import numpy as np
import pytest

import models.fp_memory
from models.geometry import iou, iou_matrix


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


def test_iou_matrix_is_iou_for_every_pair() -> None:
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 100, (9, 2))
    a = np.hstack([corners, corners + rng.uniform(0, 40, (9, 2))])
    b = np.vstack([a[:3], [[5.0, 5.0, 5.0, 5.0]], a[5:] + 7.0])  # shared, empty and shifted boxes
    matrix = iou_matrix(a, b)
    assert matrix.shape == (9, len(b))
    for i in range(len(a)):
        for j in range(len(b)):
            assert matrix[i, j] == pytest.approx(iou(a[i], b[j]), abs=1e-12)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, len(b))
