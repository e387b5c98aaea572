"""The Verifier's orchestration with scripted detectors: which scales run on which frames, verdict fields.

The detectors here are stand-ins that return fixed boxes per scale; the real models are exercised in
tests/integration/test_verifier_real.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from cloud.verifier import Verifier, VerifierSettings
from contracts import Box, Candidate, ModelRef, new_event_id
from models.detector import Detection

PERSON = Detection(100, 100, 140, 200, 0.0)


class ScriptedPipeline:
    def __init__(self, owner: ScriptedDetector) -> None:
        self.owner = owner
        self.done: list[tuple[Any, list[Detection]]] = []

    def submit(self, frame: np.ndarray, userdata: Any, regions=None, floor=None) -> None:
        _, scale = userdata
        self.owner.calls.append(scale)
        score = self.owner.scores.get(scale, 0.0)
        dets = [Detection(PERSON.x1, PERSON.y1, PERSON.x2, PERSON.y2, score)] if score > 0 else []
        self.done.append((userdata, dets))

    def drain(self) -> Iterator[tuple[Any, list[Detection]]]:
        yield from self.done


class ScriptedDetector:
    """Answers the same person box at every frame, with a score per scale ('full', '2x2', '3x3')."""

    def __init__(self, model_id: str, scores: dict[str, float]) -> None:
        self.scores = scores
        self.calls: list[str] = []
        self.ref = ModelRef(model_id=model_id, version="test")

    def pipeline(self) -> ScriptedPipeline:
        return ScriptedPipeline(self)


def candidate(frames: int) -> Candidate:
    now = datetime.now(UTC)
    return Candidate(
        event_id=new_event_id(), gateway_id="gw", camera_id="cam", started_at=now, ended_at=now,
        start_offset_s=0.0, end_offset_s=(frames - 1) * 0.2, frame_width=640, frame_height=480,
        best_frame_offset_s=0.0, snapshot_jpeg=b"", boxes=[Box(x1=100, y1=100, x2=140, y2=200, score=0.6)],
        tracks=[], score=0.6, threshold=0.5, model=ModelRef(model_id="ssd-mobilenet-v2-coco", version="1"),
        reasons=["test"],
    )


def frames(n: int) -> list[tuple[float, np.ndarray]]:
    return [(0.2 * i, np.zeros((480, 640, 3), np.uint8)) for i in range(n)]


def verifier(coco: dict[str, float], lite: dict[str, float], **settings: Any) -> Verifier:
    detectors = {"coco": ScriptedDetector("coco", coco), "lite": ScriptedDetector("lite", lite)}
    return Verifier(VerifierSettings(**settings), detectors=detectors)  # type: ignore[arg-type]


def test_clear_person_skips_the_fine_grid() -> None:
    v = verifier({"full": 0.9, "2x2": 0.9, "3x3": 0.9}, {"full": 0.9, "2x2": 0.9})
    verdict = v.verify(candidate(4), frames(4))
    assert verdict.decision == "confirmed"
    assert "3x3" not in v.detectors["coco"].calls  # type: ignore[attr-defined]
    assert verdict.frames_examined == 4
    assert [m.model_id for m in verdict.models] == ["coco", "lite"]
    assert verdict.boxes and verdict.boxes[0].x1 == 100
    assert any("examined 4 frame(s)" in r for r in verdict.reasons)


def test_unclear_frames_escalate_to_the_fine_grid() -> None:
    # Only the 3x3 tiles of both models see the (small) person: found after escalation.
    v = verifier({"3x3": 0.9}, {"3x3": 0.8})
    verdict = v.verify(candidate(4), frames(4))
    assert verdict.decision == "confirmed"
    assert v.detectors["coco"].calls.count("3x3") == 4  # type: ignore[attr-defined]
    # The second pass (after 4 frames x full and 2x2) runs only the fine grid.
    assert v.detectors["coco"].calls[8:] == ["3x3"] * 4  # type: ignore[attr-defined]


def test_no_escalation_setting_runs_every_scale_once() -> None:
    v = verifier({"full": 0.9, "2x2": 0.9}, {"full": 0.9}, escalate_tiles=False)
    v.verify(candidate(2), frames(2))
    assert sorted(v.detectors["coco"].calls) == ["2x2", "2x2", "3x3", "3x3", "full", "full"]  # type: ignore[attr-defined]


def test_nothing_found_is_rejected_with_reasons() -> None:
    verdict = verifier({}, {}).verify(candidate(3), frames(3))
    assert verdict.decision == "rejected"
    assert verdict.score < 0.3
    assert verdict.boxes == []
    assert verdict.reasons


def test_frames_must_be_images() -> None:
    with pytest.raises(ValueError, match="no frame"):
        verifier({}, {}).verify(candidate(1), [])
    with pytest.raises(ValueError, match="not a BGR image"):
        verifier({}, {}).verify(candidate(1), [(0.0, np.zeros((4, 4), np.uint8))])


def test_max_frames_caps_the_look() -> None:
    v = verifier({"full": 0.9, "2x2": 0.9}, {"full": 0.9}, max_frames=3)
    verdict = v.verify(candidate(20), frames(20))
    assert verdict.frames_examined == 3
