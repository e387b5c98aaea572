"""Inference precision is pinned, recorded and carried, and the models folder is one folder.

Left alone, OpenVINO runs an FP32 IR in bf16 on CPUs with AVX512_BF16/AMX, and scores move by up to 0.02 between
hosts. These tests read back what the compiled model says it runs in, so they hold (and would catch a regression)
on any x86 host: on one without BF16 an asked-for bf16 runs, and is reported, as f32.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
ov = pytest.importorskip("openvino")

from contracts import ModelRef  # noqa: E402
from models.detector import PersonDetector, compile_config  # noqa: E402
from models.manifest import MANIFEST_NAME, load_manifest  # noqa: E402
from models.paths import models_root  # noqa: E402
from models.prepare import find_prepared, prepare  # noqa: E402

pytestmark = pytest.mark.integration  # needs a prepared model (prepared here when missing)

MODEL = "ssdlite-person"  # the smaller of the two: quick to compile


@pytest.fixture(scope="module")
def model_dir() -> Path:
    path, _ = prepare(MODEL)
    return path


@pytest.fixture(scope="module")
def frame(vtest: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(vtest))
    for _ in range(50):
        ok, image = cap.read()
    cap.release()
    assert ok
    return image


def _host_has_bf16() -> bool:
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_compiled_model_runs_in_f32_by_default(model_dir: Path) -> None:
    det = PersonDetector(model_dir, threads=1)
    assert det.compiled_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
    assert det.compiled_property("EXECUTION_MODE_HINT") == ov.properties.hint.ExecutionMode.ACCURACY
    assert det.compiled_property("CPU_DENORMALS_OPTIMIZATION") is False
    assert det.inference_precision == "f32"
    assert det.ref.inference_precision == "f32"
    assert _convolution_precisions(det) == {"f32"}  # what the plugin really built, not only the hint


def _convolution_precisions(det: PersonDetector) -> set[str]:
    runtime = det._compiled.get_runtime_model()  # the executable graph, as the plugin built it
    return {op.get_rt_info()["runtimePrecision"].astype(str) for op in runtime.get_ops()
            if op.get_rt_info()["layerType"].astype(str) == "Convolution"}


def test_configured_bf16_is_passed_through(model_dir: Path) -> None:
    config = compile_config("CPU", "latency", "bf16")
    assert config["INFERENCE_PRECISION_HINT"] == "bf16"
    assert config["EXECUTION_MODE_HINT"] == "PERFORMANCE"
    det = PersonDetector(model_dir, threads=1, precision="bf16")
    # What the host really runs: bf16 where the CPU has it, f32 where it has not; the record says which.
    running = "bf16" if _host_has_bf16() else "f32"
    assert det.requested_precision == "bf16"
    assert det.compiled_property("INFERENCE_PRECISION_HINT").to_string() == running
    assert det.inference_precision == running
    assert det.ref.inference_precision == running
    built = _convolution_precisions(det)
    assert built == {"f32"} if running == "f32" else "bf16" in built  # bf16 may leave a layer or two in f32


def test_unknown_precision_is_refused_by_name(model_dir: Path) -> None:
    with pytest.raises(ValueError, match="'fp8'"):
        PersonDetector(model_dir, precision="fp8")  # type: ignore[arg-type]


def test_the_same_image_gives_the_same_scores_twice(model_dir: Path, frame: np.ndarray) -> None:
    det = PersonDetector(model_dir, threads=1)
    first = det.detect(frame)
    second = det.detect(frame)
    assert first, "vtest frame 50 holds people"
    assert [d.score for d in first] == [d.score for d in second]
    assert [d.as_xyxy() for d in first] == [d.as_xyxy() for d in second]
    # Another compilation, another mode and thread count: the same people, the same scores to f32 rounding.
    other = PersonDetector(model_dir, mode="throughput")
    pipeline = other.pipeline()
    pipeline.submit(frame, "frame-50")
    [(tag, third)] = list(pipeline.drain())
    assert tag == "frame-50"
    assert len(third) == len(first)
    np.testing.assert_allclose([d.score for d in third], [d.score for d in first], rtol=0, atol=1e-5)


def _copy_prepared(src: Path, root: Path) -> Path:
    """A prepared model under another models folder (same layout), so a test may rewrite its manifest."""
    manifest = load_manifest(src)
    dest = root / manifest.model_id / manifest.version / manifest.precision
    dest.mkdir(parents=True)
    for name in (MANIFEST_NAME, manifest.ir_xml, manifest.ir_bin):
        shutil.copy2(src / name, dest / name)
    return dest


def test_manifest_records_the_inference_precision(model_dir: Path, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    copy = _copy_prepared(model_dir, tmp_path)
    before = load_manifest(copy)
    assert before.inference_precision == "f32"
    messages: list[str] = []
    out, manifest = prepare(MODEL, root=tmp_path, inference_precision="bf16", progress=messages.append)
    assert out == copy
    assert manifest.inference_precision == "bf16"
    assert load_manifest(copy).inference_precision == "bf16"  # written to disk
    assert manifest.ir_bin_sha256 == before.ir_bin_sha256  # only the record changed, the IR was not rebuilt
    assert any("recorded for bf16" in m for m in messages)
    # Run at f32 (the default) although validated for bf16: it runs, says so in a log line, and reports f32.
    with caplog.at_level(logging.WARNING, logger="models.detector"):
        det = PersonDetector(copy, threads=1)
    assert det.ref.inference_precision == "f32"
    [record] = [r for r in caplog.records if r.name == "models.detector"]
    assert (record.requested, record.running, record.validated) == ("f32", "f32", "bf16")


def test_manifest_written_before_the_field_loads_as_f32(model_dir: Path, tmp_path: Path) -> None:
    data = json.loads((model_dir / MANIFEST_NAME).read_text())
    data.pop("inference_precision", None)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(data))
    assert load_manifest(tmp_path).inference_precision == "f32"


def test_model_ref_carries_the_precision_and_older_messages_still_parse() -> None:
    from tests.unit.cloud_factories import make_candidate

    old = {"model_id": "ssd-mobilenet-v2-coco", "version": "1.0.0", "precision": "FP32", "ir_sha256": None}
    assert ModelRef.model_validate_json(json.dumps(old)).inference_precision is None
    candidate = make_candidate()
    old_wire = json.loads(candidate.model_dump_json())
    old_wire["model"].pop("inference_precision")  # a gateway released before the field
    assert type(candidate).model_validate(old_wire).model.inference_precision is None
    new = candidate.model_copy(update={"model": ModelRef(model_id="m", version="1", inference_precision="bf16")})
    assert type(candidate).model_validate_json(new.model_dump_json()).model.inference_precision == "bf16"
    with pytest.raises(ValueError, match="inference_precision"):
        ModelRef(model_id="m", version="1", inference_precision="fp64")  # type: ignore[arg-type]


def test_find_prepared_says_how_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        find_prepared(MODEL, "INT8", root=tmp_path)
    message = str(err.value)
    assert "vigia models prepare --model ssdlite-person --precision INT8" in message
    assert str(tmp_path) in message


def test_one_models_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import models.paths

    checkout = Path(models.paths.__file__).resolve().parents[1]
    monkeypatch.setenv("VIGIA_MODELS_DIR", str(tmp_path / "set"))
    assert models_root() == tmp_path / "set"
    monkeypatch.delenv("VIGIA_MODELS_DIR")
    assert models_root() == checkout / ".cache" / "models"  # these tests run from a source checkout
    # Installed as a wheel (no pyproject.toml of ours above the package): the per-user cache.
    monkeypatch.setattr(models.paths, "_CHECKOUT", tmp_path / "site-packages")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert models_root() == tmp_path / "cache" / "vigia" / "models"
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "cache" / "vigia" / "models")):
        find_prepared(MODEL)
