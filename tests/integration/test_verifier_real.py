"""The verifier with the REAL prepared models on real pictures that packages ship (no mocked detector).

scikit-image's astronaut is a person; chelsea (a cat), coffee and rocket are not. A few seconds of
OpenCV's vtest.avi (PETS 2009, people walking) must be confirmed as a clip segment the gateway wrote.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud.verifier import Verifier, VerifierSettings
from cloud.verifier.tune import gateway_still_boxes, make_candidate
from contracts import Candidate, ClipRef
from models.detector import PersonDetector
from models.fp_memory import FpMemoryStore

pytestmark = pytest.mark.integration

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
GATEWAY = "ssd-mobilenet-v2-coco"


def skimage_bgr(name: str) -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    image = getattr(data, name)()
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def detectors() -> dict[str, PersonDetector]:
    from models.prepare import find_prepared

    try:
        dirs = {m: find_prepared(m) for m in VerifierSettings().models}
    except FileNotFoundError as exc:
        pytest.skip(f"prepared models missing: {exc}")
    return {m: PersonDetector(d, mode="throughput", score_floor=0.1) for m, d in dirs.items()}


@pytest.fixture(scope="module")
def verifier(detectors: dict[str, PersonDetector]) -> Verifier:
    return Verifier(VerifierSettings(), detectors=detectors)


def still_candidate(image: np.ndarray, gateway: PersonDetector, camera_id: str = "cam-a") -> Candidate:
    # The gateway's best boxes, whatever their score: the verifier must judge even a weak candidate.
    boxes = gateway_still_boxes(image, gateway)[:3]
    return make_candidate(image, boxes, gateway, camera_id=camera_id, source="skimage", threshold=0.35)


def test_astronaut_is_confirmed(verifier: Verifier) -> None:
    image = skimage_bgr("astronaut")
    verdict = verifier.verify(still_candidate(image, verifier.detectors[GATEWAY]), [(0.0, image)])
    assert verdict.decision == "confirmed", verdict.reasons
    assert verdict.boxes and verdict.score >= 0.5
    assert verdict.frames_examined == 1
    assert {m.model_id for m in verdict.models} == set(VerifierSettings().models)
    assert verdict.processing_ms > 0


@pytest.mark.parametrize("name", ["chelsea", "coffee", "rocket"])
def test_no_person_pictures_are_never_confirmed(verifier: Verifier, name: str) -> None:
    image = skimage_bgr(name)
    verdict = verifier.verify(still_candidate(image, verifier.detectors[GATEWAY]), [(0.0, image)])
    assert verdict.decision == "rejected", (verdict.score, verdict.reasons)


Frames = list[tuple[float, np.ndarray]]


def _vtest_segment(tmp_path: Path, seconds: float = 4.0, fps: float = 5.0) -> tuple[Path, Frames]:
    """The first seconds of vtest.avi, written at 5 fps as MJPG AVI, like the gateway's segments."""
    if not VTEST.exists():
        pytest.skip(f"{VTEST} missing (Debian package opencv-doc)")
    capture = cv2.VideoCapture(str(VTEST))
    frames: list[tuple[float, np.ndarray]] = []
    next_t = 0.0
    while True:
        ok, frame = capture.read()
        t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if not ok or t > seconds:
            break
        if t + 1e-6 >= next_t:
            frames.append((t, frame))
            next_t = t + 1 / fps
    capture.release()
    path = tmp_path / "segment.avi"
    height, width = frames[0][1].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for _, frame in frames:
        writer.write(frame)
    writer.release()
    return path, frames


def test_vtest_segment_is_confirmed(detectors: dict[str, PersonDetector], tmp_path: Path) -> None:
    verifier = Verifier(VerifierSettings(max_frames=4, tile_grids=(2,)), detectors=detectors)
    path, frames = _vtest_segment(tmp_path)
    best_t, best = frames[len(frames) // 2]
    gateway = detectors[GATEWAY]
    boxes = [d for d in gateway.detect(best) if d.score >= 0.5][:3]
    candidate = make_candidate(best, boxes, gateway, camera_id="pets", source="vtest.avi", threshold=0.5,
                               start=0.0, end=frames[-1][0], best=best_t)
    candidate = candidate.model_copy(update={"clip": ClipRef(kind="local", uri="segment.avi", fps=5.0)})
    verdict = verifier.verify_clip(candidate, path)
    assert verdict.decision == "confirmed", verdict.reasons
    assert verdict.frames_examined == 4
    # The same segment handed over as decoded frames gives the same decision.
    assert verifier.verify(candidate, frames).decision == "confirmed"


def test_repeat_of_a_remembered_false_positive_is_rejected(
    detectors: dict[str, PersonDetector], tmp_path: Path
) -> None:
    store = FpMemoryStore(tmp_path / "fpmem")
    verifier = Verifier(VerifierSettings(), fp_memories=store, detectors=detectors)
    image = skimage_bgr("chelsea")
    candidate = still_candidate(image, detectors[GATEWAY], camera_id="porch")
    assert candidate.boxes, "the gateway model should give the cat some box"
    first = verifier.verify(candidate, [(0.0, image)])
    assert first.decision == "rejected", (first.score, first.reasons)  # as without a memory
    assert not any("memory" in r for r in first.reasons)

    # Feedback: a reviewer marks the candidate's box as a false positive of this camera.
    box = candidate.boxes[0]
    store.get("porch").add(image, (box.x1, box.y1, box.x2, box.y2), source_event_id=candidate.event_id, label="cat")
    repeat = still_candidate(image, detectors[GATEWAY], camera_id="porch")
    verdict = verifier.verify(repeat, [(0.0, image)])
    assert verdict.decision == "rejected"
    assert any("remembered false positive" in r for r in verdict.reasons), verdict.reasons

    # A real person where a false positive is remembered looks different and still gets through.
    person = skimage_bgr("astronaut")
    person_candidate = still_candidate(person, detectors[GATEWAY], camera_id="porch")
    pb = person_candidate.boxes[0]
    sx, sy = image.shape[1] / person.shape[1], image.shape[0] / person.shape[0]
    store.get("porch").add(image, (pb.x1 * sx, pb.y1 * sy, pb.x2 * sx, pb.y2 * sy), label="cat-coloured place")
    assert verifier.verify(person_candidate, [(0.0, person)]).decision == "confirmed"
