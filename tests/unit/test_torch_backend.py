"""The torch detector (GPU verifier path) against the OpenVINO one, on real pictures, on CPU.

Both run the same graph in f32 (OpenVINO is pinned to f32 whatever the CPU offers, see compile_config), so the
raw network outputs for the same input tensor must agree to ~1e-4 (measured: < 1e-6), and the detections must
match one to one by overlap (IoU), not by rank: two people whose scores differ by 1e-6 may swap places. A batch
of four crops must give what four single calls give. Torch on CPU is slow (~1 s a crop on a shared 2-core
machine), so these run one full-frame crop per picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from models.detector import Detection, PersonDetector  # noqa: E402

pytestmark = pytest.mark.integration  # needs the prepared models (export made on demand, needs OpenVINO)

MODELS = ("ssdlite-person", "ssd-mobilenet-v2-coco")
FLOOR = 0.3
RAW_TOL = 1e-4  # f32 against f32: kernel order differs between libraries and CPUs by ~1e-6
MATCH_IOU = 0.95


def _iou(a: Detection, b: Detection) -> float:
    w = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    h = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = w * h
    return inter / (a.area + b.area - inter)


def _match(expected: list[Detection], got: list[Detection]) -> list[tuple[Detection, Detection]]:
    """Each expected detection with the got one it overlaps most (each got one used once)."""
    free = list(got)
    pairs = []
    for e in sorted(expected, key=lambda d: -d.score):
        best = max(free, key=lambda g: _iou(e, g), default=None)
        assert best is not None and _iou(e, best) > MATCH_IOU, f"no detection overlaps {e}"
        free.remove(best)
        pairs.append((e, best))
    return pairs


@pytest.fixture(scope="module")
def pictures(vtest: Path) -> dict[str, np.ndarray]:
    skimage_data = pytest.importorskip("skimage.data")
    cap = cv2.VideoCapture(str(vtest))
    for _ in range(50):
        ok, frame = cap.read()
    cap.release()
    assert ok
    return {"astronaut": cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR), "vtest": frame}


@pytest.fixture(scope="module", params=MODELS)
def detectors(request: pytest.FixtureRequest):
    pytest.importorskip("openvino")
    from models.backends import torch_artifacts
    from models.prepare import find_prepared
    from models.torch_backend import TorchPersonDetector

    try:
        model_dir = find_prepared(request.param)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    torch.set_num_threads(2)
    ov = PersonDetector(model_dir, threads=2)  # precision defaults to f32, pinned
    tv = TorchPersonDetector(torch_artifacts(request.param), device="cpu", precision="FP32", resize="cpu")
    return ov, tv


@pytest.mark.parametrize("name", ["astronaut", "vtest"])
def test_raw_outputs_agree_in_f32(detectors, pictures: dict[str, np.ndarray], name: str) -> None:
    ov, tv = detectors
    assert ov.inference_precision == "f32" and tv.ref.inference_precision == "f32"
    batch = ov.preprocess(pictures[name])  # the same uint8 tensor into both networks
    ov_boxes, ov_scores = ov.infer_raw(batch)
    tv_boxes, tv_scores = (t[0].numpy() for t in tv.forward(torch.from_numpy(batch)))
    assert ov_boxes.reshape(-1, 4).shape == tv_boxes.shape and ov_scores.ravel().shape == tv_scores.shape
    np.testing.assert_allclose(tv_boxes, ov_boxes.reshape(-1, 4), rtol=0, atol=RAW_TOL)
    np.testing.assert_allclose(tv_scores, ov_scores.ravel(), rtol=0, atol=RAW_TOL)


@pytest.mark.parametrize("name", ["astronaut", "vtest"])
def test_same_people_as_openvino(detectors, pictures: dict[str, np.ndarray], name: str) -> None:
    ov, tv = detectors
    # Detections near the floor may fall on either side of it by 1e-6: compare those clear of it, against all
    # the other side found a little below it.
    margin = 10 * RAW_TOL
    expected = ov.detect(pictures[name], floor=FLOOR)
    got = tv.detect(pictures[name], floor=FLOOR)
    assert expected, "the picture should hold people"
    for ref_side, other_side in ((expected, tv.detect(pictures[name], floor=FLOOR - margin)),
                                 (got, ov.detect(pictures[name], floor=FLOOR - margin))):
        clear = [d for d in ref_side if d.score >= FLOOR + margin]
        for a, b in _match(clear, other_side):
            assert abs(a.score - b.score) < RAW_TOL
            assert np.allclose(a.as_xyxy(), b.as_xyxy(), atol=0.05)  # pixels
    assert tv.ref.model_id == ov.ref.model_id and tv.ref.version == ov.ref.version
    assert tv.ref.precision == "FP32" and tv.ref.ir_sha256 == ov.ref.ir_sha256
    assert tv.ref.inference_precision == ov.ref.inference_precision == "f32"


def test_batch_of_four_equals_four_singles(detectors, pictures: dict[str, np.ndarray]) -> None:
    _, tv = detectors
    frame = pictures["vtest"]
    h, w = frame.shape[:2]
    frames = [frame, pictures["astronaut"], frame[:, ::-1].copy(), frame[: h // 2 + 100, : w // 2 + 100].copy()]
    before = tv.calls
    batched = tv.detect_batch(frames, None, FLOOR)
    assert tv.calls - before == 4  # one crop each, one forward pass
    singles = [tv.detect(f, floor=FLOOR) for f in frames]
    assert [len(d) for d in batched] == [len(d) for d in singles]
    for b_dets, s_dets in zip(batched, singles, strict=True):
        for b, s in _match(b_dets, s_dets):
            assert np.allclose(b.as_xyxy(), s.as_xyxy(), atol=1e-3) and abs(b.score - s.score) < 1e-5


def test_graph_runs_any_batch_without_openvino_objects() -> None:
    """The interpreter takes a batch the IR never had and keeps samples independent."""
    from models.backends import torch_artifacts
    from models.torch_graph import load_graph

    try:
        graph, meta = load_graph(torch_artifacts("ssdlite-person"))
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    x = torch.randint(0, 256, (3, 300, 300, 3), dtype=torch.uint8)
    with torch.inference_mode():
        out = graph.eval()(x)
        one = graph(x[1:2])
    scores = out["person_scores"].reshape(3, -1)
    assert out["boxes"].reshape(3, -1, 4).shape[1] == scores.shape[1] == 1917
    assert torch.allclose(scores[1], one["person_scores"].reshape(-1), atol=1e-5)
    assert meta["model_id"] == "ssdlite-person"
