"""Snapshots always fit a candidate message: quality first, then size; only an unencodable frame fails."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from contracts.candidate import MAX_SNAPSHOT_BYTES
from edge_agent.events import SNAPSHOT_MAX_WIDTH, SNAPSHOT_TARGET_BYTES, OpenEvent, encode_snapshot


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _noise(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_4k_noise_fits_the_cap() -> None:
    # Every pixel independent: the worst case for JPEG, at the largest frame a camera sends.
    data = encode_snapshot(_noise(2160, 3840))
    assert data[:2] == b"\xff\xd8"
    assert len(data) <= SNAPSHOT_TARGET_BYTES <= MAX_SNAPSHOT_BYTES
    assert _decode(data).shape[:2] == (360, 640)  # the width cap alone; lower quality did the rest


def test_noise_that_no_quality_fits_shrinks_the_picture_and_keeps_its_aspect() -> None:
    # Portrait noise already 640 wide: too big even at the lowest quality, so the picture shrinks.
    data = encode_snapshot(_noise(1138, 640))
    assert len(data) <= SNAPSHOT_TARGET_BYTES
    height, width = _decode(data).shape[:2]
    assert width < SNAPSHOT_MAX_WIDTH
    assert abs(height / width - 1138 / 640) < 0.01


def test_an_ordinary_frame_keeps_the_640_width_and_the_requested_quality() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    cv2.rectangle(frame, (100, 100), (400, 600), (0, 200, 255), -1)
    data = encode_snapshot(frame, quality=80)
    ok, expected = cv2.imencode(".jpg", cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA),
                                [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok and data == expected.tobytes()


def test_a_tighter_cap_is_honoured() -> None:
    frame = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert len(encode_snapshot(frame, max_bytes=5_000)) <= 5_000
    with pytest.raises(ValueError, match="max_bytes"):
        encode_snapshot(frame, max_bytes=MAX_SNAPSHOT_BYTES + 1)


@pytest.mark.parametrize("frame, why", [
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 3), np.float32), "8-bit"),
    (np.zeros((4, 4, 2), np.uint8), "not a picture"),
])
def test_only_a_frame_that_cannot_be_encoded_raises(frame: np.ndarray, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        encode_snapshot(frame)


def test_an_event_keeps_its_last_good_snapshot_and_boxes_in_frame_pixels() -> None:
    event = OpenEvent("01HZX3F8Q4W6J0S5T9V2K7M1AB", 0.0, 0.0)
    big = _noise(2160, 3840)
    boxes = [(3000.0, 1500.0, 3300.0, 2100.0)]  # in 4K frame pixels, not snapshot pixels
    event.offer_frame(1.0, big, 0.7, boxes)
    assert event.best_snapshot[:2] == b"\xff\xd8" and event.best_boxes == boxes and event.best_ts == 1.0
    event.offer_frame(2.0, np.zeros((4, 4, 3), np.float32), 0.9, [(0.0, 0.0, 1.0, 1.0)])
    assert (event.best_ts, event.best_score, event.best_boxes) == (1.0, 0.7, boxes)
