"""Verifier settings from the environment (VIGIA_VERIFIER_*) and what real_verify builds from them."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from cloud.runtime.verifier_adapter import build_verifier, cuda_available, fp_memories, resolve_device
from cloud.settings import CloudSettings
from cloud.verifier.settings import VerifierConfigError, VerifierEnv, VerifierSettings

HAS_GPU = cuda_available()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("VIGIA_VERIFIER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def prepared_models() -> Path:
    """The prepared verifier model (VIGIA_MODELS_DIR; `make` prepares it)."""
    from models.prepare import find_prepared

    try:
        return find_prepared("ssdlite-person")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def env_with(monkeypatch: pytest.MonkeyPatch, **values: str) -> VerifierEnv:
    for name, value in values.items():
        monkeypatch.setenv(f"VIGIA_VERIFIER_{name.upper()}", value)
    return VerifierEnv.from_environment()


def test_unset_environment_gives_the_default_verifier(monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(monkeypatch)
    assert env.device == "cpu"
    assert env.verifier_settings() == VerifierSettings(device="CPU")


def test_environment_sets_frames_tiles_models_and_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_with(monkeypatch, max_frames="12", tile_grids="2,4", models='["ssdlite-person"]',
                   model_versions="ssdlite-person=1.0.0", inference_precision="f16", threads="4")
    settings = env.verifier_settings()
    assert (settings.max_frames, settings.tile_grids, settings.models) == (12, (2, 4), ("ssdlite-person",))
    assert (settings.inference_precision, settings.threads, settings.device) == ("f16", 4, "CPU")
    assert settings.confirm_threshold == VerifierSettings().confirm_threshold  # the rest stays as calibrated


@pytest.mark.parametrize(("name", "value", "message"), [
    ("device", "gpu", "VIGIA_VERIFIER_DEVICE: Input should be 'cpu', 'cuda' or 'auto' (got 'gpu')"),
    ("max_frames", "many", "VIGIA_VERIFIER_MAX_FRAMES: Input should be a valid integer"),
    ("fp_memory", "dynamo", "VIGIA_VERIFIER_FP_MEMORY: Input should be 's3', 'folder' or 'off'"),
])
def test_a_malformed_variable_is_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                       message: str) -> None:
    with pytest.raises(VerifierConfigError) as caught:
        env_with(monkeypatch, **{name: value})
    assert message in str(caught.value)


@pytest.mark.parametrize(("values", "message"), [
    ({"max_frames": "0"}, "VIGIA_VERIFIER_MAX_FRAMES: Input should be greater than or equal to 1 (got 0)"),
    ({"tile_grids": "2,9"}, "VIGIA_VERIFIER_TILE_GRIDS: Value error, tile grid 9 is outside 2..6"),
    ({"models": "yolo-x"}, "VIGIA_VERIFIER_MODELS names ['yolo-x'], not in the model catalog"),
    ({"model_versions": "ssdlite-person=2.0.0"},
     "VIGIA_VERIFIER_MODEL_VERSIONS wants ssdlite-person 2.0.0, this image holds 1.0.0"),
    ({"model_versions": "ssdlite-person"}, "expected model_id=version pairs"),
    ({"device": "cuda", "precision": "INT8"}, "VIGIA_VERIFIER_PRECISION=INT8: the GPU path runs the FP32 graph"),
    ({"device": "auto", "inference_precision": "bf16"}, "VIGIA_VERIFIER_INFERENCE_PRECISION=bf16: on CUDA"),
])
def test_values_the_verifier_cannot_run_are_named(monkeypatch: pytest.MonkeyPatch, values: dict[str, str],
                                                   message: str) -> None:
    with pytest.raises(VerifierConfigError) as caught:
        env_with(monkeypatch, **values).verifier_settings()
    assert message in str(caught.value)


@pytest.mark.skipif(HAS_GPU, reason="checks the behaviour of a host without a CUDA device")
def test_auto_falls_back_to_cpu_with_a_log_line(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    env = env_with(monkeypatch, device="auto")
    with caplog.at_level(logging.WARNING, logger="cloud.runtime.verifier_adapter"):
        settings = resolve_device(env, env.verifier_settings())
    assert settings.device == "CPU"
    [record] = caplog.records
    assert record.getMessage() == "no CUDA device: the verifier runs on CPU (OpenVINO)"
    assert (record.requested, record.device) == ("auto", "CPU")


@pytest.mark.skipif(HAS_GPU, reason="checks the behaviour of a host without a CUDA device")
def test_cuda_without_a_gpu_is_a_startup_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIA_VERIFIER_DEVICE", "cuda")
    with pytest.raises(VerifierConfigError, match="VIGIA_VERIFIER_DEVICE=cuda but torch sees no CUDA device"):
        build_verifier(CloudSettings(store="local", data_dir=tmp_path))


def test_fp_memory_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cloud.feedback.published import PublishedFpMemories
    from models.fp_memory import FpMemoryStore

    local = CloudSettings(store="local", data_dir=tmp_path)
    assert isinstance(fp_memories(local, env_with(monkeypatch)), FpMemoryStore)  # the embedded default
    assert fp_memories(local, env_with(monkeypatch, fp_memory="off")) is None
    with pytest.raises(VerifierConfigError, match="VIGIA_VERIFIER_FP_MEMORY=s3 needs VIGIA_STORE=aws"):
        fp_memories(local, env_with(monkeypatch, fp_memory="s3"))

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the S3 client is made, never called here
    aws = CloudSettings(store="aws", bucket="vigia-media", table="vigia-events",
                        topic_arn="arn:aws:sns:eu-west-1:123456789012:alerts", dlq_url="https://sqs/dlq")
    monkeypatch.delenv("VIGIA_VERIFIER_FP_MEMORY")
    published = fp_memories(aws, VerifierEnv.from_environment())
    assert isinstance(published, PublishedFpMemories) and published.objects.bucket == "vigia-media"
    with pytest.raises(VerifierConfigError, match="FP_MEMORY=folder needs VIGIA_FP_MEMORY_DIR"):
        fp_memories(aws, env_with(monkeypatch, fp_memory="folder"))


def test_real_verifier_is_built_as_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              prepared_models: Path) -> None:
    from models.detector import PersonDetector

    env = env_with(monkeypatch, device="cpu", models="ssdlite-person", max_frames="3", tile_grids="2",
                   fp_memory="off")
    verifier = build_verifier(CloudSettings(store="local", data_dir=tmp_path), env)
    assert verifier.settings == VerifierSettings(device="CPU", models=("ssdlite-person",), max_frames=3,
                                                 tile_grids=(2,))
    assert list(verifier.detectors) == ["ssdlite-person"]
    assert isinstance(verifier.detectors["ssdlite-person"], PersonDetector)  # OpenVINO, not torch
    assert verifier.fp_memories is None


@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA device (the ECS GPU host)")
def test_auto_on_a_gpu_host_builds_the_torch_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     prepared_models: Path) -> None:
    from models.torch_backend import TorchPersonDetector

    env = env_with(monkeypatch, device="auto", models="ssdlite-person", fp_memory="off")
    verifier = build_verifier(CloudSettings(store="local", data_dir=tmp_path), env)
    assert verifier.settings.device == "cuda"
    assert isinstance(verifier.detectors["ssdlite-person"], TorchPersonDetector)
