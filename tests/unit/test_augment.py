"""Augmentation bounds: each op alone keeps shape/dtype, stays within its declared range, is deterministic."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from models.training import augment as A
from models.training.contact_sheet import CELL, render_sheet, sheet_size

B = A.DEFAULT_BOUNDS


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    rgb = data.astronaut()[30:330, 130:430]  # the astronaut's head and shoulders
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (128, 128), interpolation=cv2.INTER_AREA)


def _mean(img: np.ndarray) -> float:
    return float(img.astype(np.float32).mean())


@pytest.mark.parametrize("name", list(A.OPS))
def test_each_op_keeps_shape_and_dtype(name: str, crop: np.ndarray) -> None:
    for seed in range(5):
        out, label = A.OPS[name](crop, np.random.default_rng(seed), B)
        assert out.shape == crop.shape and out.dtype == np.uint8
        assert isinstance(label, str) and label


def test_brightness_change_within_its_bound(crop: np.ndarray) -> None:
    m = _mean(crop)
    for seed in range(20):
        out, _ = A.brightness_contrast(crop, np.random.default_rng(seed), B)
        assert abs(_mean(out) - m) <= 0.25 * m + 3  # clipping at 0/255 only pulls it back


def test_noise_and_blur_keep_the_mean(crop: np.ndarray) -> None:
    for seed in range(10):
        for op in (A.noise, A.blur, A.jpeg, A.rotate, A.flip):
            out, _ = op(crop, np.random.default_rng(seed), B)
            assert abs(_mean(out) - _mean(crop)) < 6, op.__name__


def test_noise_sigma_bounded(crop: np.ndarray) -> None:
    flat = np.full((128, 128, 3), 128, np.uint8)
    for seed in range(10):
        out, _ = A.noise(flat, np.random.default_rng(seed), B)
        assert float(out.astype(np.float32).std()) <= B.noise_sigma[1] * 1.1


def test_low_light_darkens_within_gamma_bounds(crop: np.ndarray) -> None:
    f = crop.astype(np.float32) / 255.0
    darkest = _mean(255.0 * f ** B.low_light_gamma[1])
    lightest = _mean(255.0 * f ** B.low_light_gamma[0])
    for seed in range(10):
        out, label = A.low_light(crop, np.random.default_rng(seed), B)
        assert darkest - 2 <= _mean(out) <= lightest + 2, label


def test_ir_is_grey(crop: np.ndarray) -> None:
    out, _ = A.ir_gray(crop, np.random.default_rng(0), B)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def _centre_spot() -> np.ndarray:
    img = np.full((128, 128, 3), 40, np.uint8)
    cv2.circle(img, (64, 64), 6, (255, 255, 255), -1)
    return img


def _centroid(img: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(img[..., 0] > 150)
    return float(xs.mean()), float(ys.mean())


@pytest.mark.parametrize("op", [A.rotate, A.zoom, A.flip])
def test_geometry_keeps_the_centre(op) -> None:
    spot = _centre_spot()
    for seed in range(10):
        out, _ = op(spot, np.random.default_rng(seed), B)
        cx, cy = _centroid(out)
        assert abs(cx - 64) <= 1.5 and abs(cy - 64) <= 1.5


def test_rotation_and_zoom_draws_within_bounds() -> None:
    for seed in range(50):
        _, rot = A.rotate(_centre_spot(), np.random.default_rng(seed), B)
        _, zm = A.zoom(_centre_spot(), np.random.default_rng(seed), B)
        assert abs(float(rot.split()[1].removesuffix("deg"))) <= 8.0
        assert 0.85 <= float(zm.split()[1].lstrip("x")) <= 1.15


def test_jpeg_quality_in_range(crop: np.ndarray) -> None:
    qualities = set()
    for seed in range(40):
        _, label = A.jpeg(crop, np.random.default_rng(seed), B)
        q = int(label.removeprefix("jpeg q"))
        assert 30 <= q <= 90
        qualities.add(q)
    assert len(qualities) > 5


def test_augmenter_draws_one_to_three_ops_and_is_deterministic(crop: np.ndarray) -> None:
    a, b = A.Augmenter(seed=7), A.Augmenter(seed=7)
    counts = set()
    for _ in range(30):
        (ia, oa), (ib, ob) = a(crop), b(crop)
        assert np.array_equal(ia, ib) and oa == ob
        assert ia.shape == crop.shape and ia.dtype == np.uint8
        assert 1 <= len(oa) <= 3
        counts.add(len(oa))
    assert counts <= {1, 2, 3} and len(counts) >= 2
    assert [A.Augmenter(seed=8)(crop)[1] for _ in range(5)] != [A.Augmenter(seed=7)(crop)[1] for _ in range(5)]


def test_bad_input_is_refused(crop: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 BGR"):
        A.augment(crop.astype(np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown"):
        A.Augmenter(ops=("rotate", "warp_drive"))


def test_contact_sheet_dimensions(crop: np.ndarray) -> None:
    sheet = render_sheet([(crop, "person"), (crop[:, ::-1].copy(), "negative"), (crop, "person")], augmented=4)
    assert sheet.shape == (sheet_size(3, 4)[1], sheet_size(3, 4)[0], 3) == (3 * (16 + CELL + 30), 5 * CELL, 3)
    # The original sits unchanged in the first column of the first row.
    assert np.array_equal(sheet[16:16 + CELL, :CELL], crop)
