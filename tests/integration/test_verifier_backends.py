"""The verifier on its GPU code path (the torch interpreter of the same prepared graph, batched per scale),
run here on the CPU: it must reach the same verdict as the OpenVINO path on real pictures."""

from __future__ import annotations

from datetime import UTC, datetime

import cv2
import pytest

from cloud.verifier import Verifier, VerifierSettings
from contracts import Box, Candidate, ModelRef, new_event_id

pytestmark = pytest.mark.integration
torch = pytest.importorskip("torch")


def still_candidate(image) -> Candidate:
    ok, buf = cv2.imencode(".jpg", cv2.resize(image, (160, 160)))
    assert ok
    now = datetime.now(UTC)
    h, w = image.shape[:2]
    return Candidate(event_id=new_event_id(), gateway_id="gw", camera_id="cam", started_at=now, ended_at=now,
                     start_offset_s=0, end_offset_s=0, frame_width=w, frame_height=h, best_frame_offset_s=0,
                     snapshot_jpeg=buf.tobytes(), boxes=[Box(x1=0, y1=0, x2=w - 1, y2=h - 1, score=0.5)],
                     tracks=[], score=0.5, threshold=0.35, model=ModelRef(model_id="m", version="1"),
                     reasons=["test"])


def test_torch_backend_verifier_agrees_with_openvino(pictures, gateway_model_dir) -> None:
    from models.backends import torch_artifacts
    from models.torch_backend import TorchPersonDetector

    cpu = Verifier(VerifierSettings())
    # On a GPU machine this is device="cuda" (make_detector picks it); here the same code runs on the CPU.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dets = {m: TorchPersonDetector(torch_artifacts(m), device=device, score_floor=0.1) for m in cpu.detectors}
    gpu_path = Verifier(VerifierSettings(), detectors=torch_dets)
    for name in ("astronaut", "coffee"):
        image = pictures[name]
        a = cpu.verify(still_candidate(image), [(0.0, image)])
        b = gpu_path.verify(still_candidate(image), [(0.0, image)])
        assert a.decision == b.decision, (name, a.reasons, b.reasons)
        assert abs(a.score - b.score) < 0.05
    assert cpu.verify(still_candidate(pictures["astronaut"]), [(0.0, pictures["astronaut"])]).decision == "confirmed"
