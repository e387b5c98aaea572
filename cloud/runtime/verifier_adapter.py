"""Adapts the verifier package (cloud.verifier.Verifier) to the pipeline's `verify(candidate, clip_path)`.

What is built is exactly what the settings say: the device (VIGIA_VERIFIER_DEVICE), the frames, tiles,
models and precision (VIGIA_VERIFIER_*), and where the cameras' false-positive memories come from
(VIGIA_VERIFIER_FP_MEMORY). A configuration that cannot run here fails at startup with a VerifierConfigError
naming the variable, before any message is taken.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cloud.ports import ClipUnreadable, VerifyFn
from cloud.settings import CloudSettings
from cloud.verifier.settings import ENV_PREFIX, VerifierConfigError, VerifierEnv, VerifierSettings
from contracts import Candidate, Verdict

if TYPE_CHECKING:
    from cloud.verifier import Verifier

log = logging.getLogger(__name__)


def snapshot_frame(candidate: Candidate) -> tuple[float, np.ndarray]:
    """The snapshot as a one-frame clip, for candidates sent without a clip (stills)."""
    import cv2

    image = cv2.imdecode(np.frombuffer(candidate.snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ClipUnreadable("candidate has no clip and its snapshot cannot be decoded")
    return 0.0, image


def cuda_available() -> bool:
    from models.backends import _cuda_available

    return _cuda_available()


def resolve_device(env: VerifierEnv, settings: VerifierSettings) -> VerifierSettings:
    """`auto` becomes cuda or CPU (logged); `cuda` without a GPU is a startup error, not a failure per message."""
    if env.device == "cpu":
        return settings
    if cuda_available():
        log.info("verifier on CUDA (torch backend)", extra={"requested": env.device, "device": "cuda"})
        return settings.model_copy(update={"device": "cuda"})
    if env.device == "cuda":
        raise VerifierConfigError(f"{ENV_PREFIX}DEVICE=cuda but torch sees no CUDA device here: run on a GPU "
                                  f"host (the ECS GPU service) or set {ENV_PREFIX}DEVICE=cpu or auto")
    log.warning("no CUDA device: the verifier runs on CPU (OpenVINO)", extra={"requested": "auto", "device": "CPU"})
    return settings.model_copy(update={"device": "CPU"})


def fp_memory_source(settings: CloudSettings | None, env: VerifierEnv) -> str:
    """s3 | folder | off: as chosen, else s3 in AWS mode (unless a folder is named) and the folder locally."""
    if env.fp_memory is not None:
        chosen = env.fp_memory
    elif settings is None:
        chosen = "off"
    elif settings.store == "aws":
        chosen = "folder" if settings.fp_memory_dir is not None else "s3"
    else:
        chosen = "folder"
    if chosen == "s3" and (settings is None or settings.store != "aws"):
        raise VerifierConfigError(f"{ENV_PREFIX}FP_MEMORY=s3 needs VIGIA_STORE=aws (the media bucket)")
    if chosen == "folder" and (settings is None or settings.memory_dir is None):
        raise VerifierConfigError(f"{ENV_PREFIX}FP_MEMORY=folder needs VIGIA_FP_MEMORY_DIR in AWS mode")
    return chosen


def fp_memories(settings: CloudSettings | None, env: VerifierEnv) -> Any:
    """The memory store the chosen source gives (None when off)."""
    source = fp_memory_source(settings, env)
    if source == "off":
        return None
    assert settings is not None  # fp_memory_source checked it
    if source == "s3":
        # the memories the feedback loop publishes in the media bucket, re-read every 30 s
        from cloud.feedback.published import PublishedFpMemories
        from cloud.storage.s3 import S3ObjectStore

        assert settings.bucket  # CloudSettings requires it in AWS mode
        return PublishedFpMemories(S3ObjectStore(settings.bucket))
    from models.fp_memory import FpMemoryStore

    assert settings.memory_dir is not None
    return FpMemoryStore(settings.memory_dir)


def build_verifier(settings: CloudSettings | None = None, env: VerifierEnv | None = None) -> Verifier:
    """The Verifier the settings describe (models compile here, once)."""
    from cloud.verifier import Verifier

    env = env or VerifierEnv.from_environment()
    learned = learned_stage(env)
    verifier_settings = chosen_settings(env, learned)
    memories = fp_memories(settings, env)
    log.info("verifier configured", extra={
        "device": verifier_settings.device, "models": list(verifier_settings.models),
        "max_frames": verifier_settings.max_frames, "tile_grids": list(verifier_settings.tile_grids),
        "precision": verifier_settings.precision, "inference_precision": verifier_settings.inference_precision,
        "fp_memory": fp_memory_source(settings, env),
    })
    return Verifier(settings=verifier_settings, fp_memories=memories, learned=learned)


def chosen_settings(env: VerifierEnv, learned: Any = None) -> VerifierSettings:
    """The settings the environment gives. A learned head names the detectors it was trained on, so unless
    VIGIA_VERIFIER_MODELS names an ensemble the head's is run: rolling out a head trained on another ensemble
    switches the ensemble with it, and a rollback switches it back. A named ensemble that differs is refused."""
    if learned is not None and env.models is None:
        env = env.model_copy(update={"models": learned.head.ensemble})
    chosen = resolve_device(env, env.verifier_settings())
    if learned is not None:
        try:
            learned.check_ensemble(chosen.models)
        except ValueError as exc:
            raise VerifierConfigError(f"{ENV_PREFIX}LEARNED_HEAD with {ENV_PREFIX}MODELS: {exc}") from exc
    return chosen


def learned_stage(env: VerifierEnv) -> Any:
    """The learned stage VIGIA_VERIFIER_LEARNED_HEAD names (None when unset), its bytes checked against
    VIGIA_VERIFIER_LEARNED_HEAD_SHA256 before anything is loaded."""
    if env.learned_head is None:
        return None
    if env.learned_head_sha256 is None:
        raise VerifierConfigError(f"{ENV_PREFIX}LEARNED_HEAD is set without {ENV_PREFIX}LEARNED_HEAD_SHA256: "
                                  "a head is only loaded when its checksum is pinned")
    import tempfile

    from cloud.verifier.learned import LearnedStage

    location = env.learned_head
    if location.startswith("s3://"):
        import boto3

        bucket, _, key = location[len("s3://"):].partition("/")
        local = Path(tempfile.mkdtemp(prefix="vigia-head-")) / "head.json"
        try:
            boto3.client("s3").download_file(bucket, key, str(local))
        except Exception as exc:  # any failure is a startup error naming the variable
            raise VerifierConfigError(f"{ENV_PREFIX}LEARNED_HEAD={location}: cannot download it ({exc})") from exc
        path = local
    else:
        path = Path(location)
    try:
        stage = LearnedStage.from_file(path, env.learned_head_sha256)
    except (OSError, ValueError) as exc:
        raise VerifierConfigError(f"{ENV_PREFIX}LEARNED_HEAD={location}: {exc}") from exc
    log.info("verifier judges with a learned head", extra={"head": location,
                                                             "sha256": env.learned_head_sha256[:12]})
    return stage


def real_verify(settings: CloudSettings | None = None, env: VerifierEnv | None = None) -> VerifyFn:
    """The production verifier (default of VIGIA_VERIFIER); built once, so the models compile once."""
    from cloud.verifier import ClipReadError

    verifier = build_verifier(settings, env)

    def verify(candidate: Candidate, clip_path: Path | None) -> Verdict:
        try:
            if clip_path is None:
                return verifier.verify(candidate, [snapshot_frame(candidate)])
            return verifier.verify_clip(candidate, clip_path)  # windows the segment around the event
        except ClipReadError as exc:  # retrying a corrupt file cannot help: dead-letter it
            raise ClipUnreadable(str(exc)) from exc

    return verify
