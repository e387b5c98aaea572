from __future__ import annotations

import numpy as np

from contracts import MotionSettings
from edge_agent.agent import zoom_regions
from edge_agent.motion import MotionGate


def scene(pictures) -> np.ndarray:
    return pictures["coffee"].copy()


def test_sensor_noise_is_not_motion_a_moving_object_is(pictures) -> None:
    gate = MotionGate(MotionSettings())
    base = scene(pictures)
    rng = np.random.default_rng(0)
    assert gate.check(base).moving  # first frame: no reference, let the detector look
    for _ in range(5):
        noisy = np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)
        assert not gate.check(noisy).moving
    moved = base.copy()
    moved[100:180, 200:240] = pictures["astronaut"][100:180, 200:240]  # something person-sized appears
    result = gate.check(moved)
    assert result.moving and result.regions
    x, y, w, h = result.regions[0]
    assert 150 <= x + w / 2 <= 290 and 60 <= y + h / 2 <= 220


def test_motion_inside_a_mask_is_ignored(pictures) -> None:
    # The mask covers the left half of the frame (a tree, a road).
    gate = MotionGate(MotionSettings(masks=[[(0, 0), (0.5, 0), (0.5, 1), (0, 1)]]))
    base = scene(pictures)
    gate.check(base)
    gate.check(base)
    moved = base.copy()
    moved[100:180, 50:90] = 255 - moved[100:180, 50:90]
    assert not gate.check(moved).moving
    moved[100:180, 450:490] = 255 - moved[100:180, 450:490]
    assert gate.check(moved).moving


def test_zoom_regions_are_squares_inside_the_frame_around_small_blobs() -> None:
    from edge_agent.motion import MotionResult

    regions = zoom_regions(MotionResult(True, 0.01, [(300, 200, 8, 20), (0, 0, 700, 500)]), 360, 244)
    assert len(regions) == 1  # the frame-sized blob is not a far person
    x, y, w, h = regions[0]
    assert w == h and x >= 0 and x + w <= 360 and y >= 0 and y + h <= 244
    assert x <= 300 and x + w >= 308 and y <= 200 and y + h >= 220
