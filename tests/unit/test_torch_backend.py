"""The torch detector (GPU verifier path) against the OpenVINO one, on real pictures, on CPU.

fp32 torch on CPU must find the same people as OpenVINO (IoU > 0.95, scores within 1e-3), and a batch of four
crops must give what four single calls give. Torch on CPU is slow (~1 s a crop on a shared 2-core machine), so
these run one full-frame crop per picture.
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


def _iou(a: Detection, b: Detection) -> float:
    w = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    h = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = w * h
    return inter / (a.area + b.area - inter)


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
    ov = PersonDetector(model_dir, threads=2)
    tv = TorchPersonDetector(torch_artifacts(request.param), device="cpu", precision="FP32", resize="cpu")
    return ov, tv


@pytest.mark.parametrize("name", ["astronaut", "vtest"])
def test_same_people_as_openvino(detectors, pictures: dict[str, np.ndarray], name: str) -> None:
    ov, tv = detectors
    expected = ov.detect(pictures[name], floor=FLOOR)
    got = tv.detect(pictures[name], floor=FLOOR)
    assert expected, "the picture should hold people"
    assert len(got) == len(expected)
    for e, g in zip(expected, got, strict=True):  # both sorted by score
        assert _iou(e, g) > 0.95
        assert abs(e.score - g.score) < 1e-3
    assert tv.ref.model_id == ov.ref.model_id and tv.ref.version == ov.ref.version
    assert tv.ref.precision == "FP32" and tv.ref.ir_sha256 == ov.ref.ir_sha256


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
        for b, s in zip(b_dets, s_dets, strict=True):
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
