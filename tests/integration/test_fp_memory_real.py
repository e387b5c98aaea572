"""The recurring false-positive memory on real frames: a remembered place and look is suppressed; a person
standing at the same place is not."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from models.fp_memory import FpMemory, FpMemoryStore
from models.geometry import iou

pytestmark = pytest.mark.integration


def frames_of(path: Path, indices: list[int]) -> dict[int, cv2.Mat]:
    cap = cv2.VideoCapture(str(path))
    out, i = {}, 0
    while i <= max(indices):
        ok, frame = cap.read()
        if not ok:
            break
        if i in indices:
            out[i] = frame
        i += 1
    cap.release()
    return out


def test_memory_suppresses_the_repeat_but_not_a_person_at_the_same_place(vtest: Path, gateway_detector,
                                                                       tmp_path: Path) -> None:
    frames = frames_of(vtest, list(range(0, 795, 15)))
    # A real person box, then a frame where nobody stands there (the background: our "coat on the wall").
    person_frame, box = None, None
    for index, frame in frames.items():
        dets = [d for d in gateway_detector.detect(frame) if d.score > 0.7 and d.height > 60]
        if dets:
            person_frame, box = index, dets[0].as_xyxy()
            break
    assert box is not None
    empty = [i for i, f in frames.items() if abs(i - person_frame) > 60 and not any(
        d.score > 0.05 and iou(d.as_xyxy(), box) > 0.05 for d in gateway_detector.detect(f))]
    assert len(empty) >= 2
    memory = FpMemory(camera_id="plaza")
    memory.add(frames[empty[0]], box, source_event_id="01M8G5AT8NJSTMNJPV2B1QADE9", label="reviewer: no person")

    assert memory.match(frames[empty[1]], box, threshold=0.8) is not None  # the same place, the same look
    assert memory.match(frames[person_frame], box, threshold=0.8) is None  # a person standing there passes
    shifted = (box[0] + 300, box[1], box[2] + 300, box[3])
    assert memory.match(frames[empty[1]], shifted, threshold=0.8) is None  # another place

    store = FpMemoryStore(tmp_path)
    store.replace(memory)
    again = FpMemoryStore(tmp_path).get("plaza")
    assert again.version == memory.version and again.content_sha256() == memory.content_sha256()
    assert again.match(frames[empty[1]], box, threshold=0.8) is not None


def test_skimage_cat_remembered_does_not_hide_the_astronaut(pictures) -> None:
    scene_cat = cv2.resize(pictures["chelsea"], (400, 300))
    scene_person = cv2.resize(pictures["astronaut"], (400, 300))
    box = (100.0, 40.0, 260.0, 290.0)
    memory = FpMemory(camera_id="porch")
    memory.add(scene_cat, box)
    assert memory.match(scene_cat, box, threshold=0.8) is not None
    assert memory.match(scene_person, box, threshold=0.8) is None
