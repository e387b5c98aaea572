"""Adapts the verifier package (cloud.verifier.Verifier) to the pipeline's `verify(candidate, clip_path)`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cloud.ports import ClipUnreadable, VerifyFn
from cloud.settings import CloudSettings
from contracts import Candidate, Verdict


def snapshot_frame(candidate: Candidate) -> tuple[float, np.ndarray]:
    """The snapshot as a one-frame clip, for candidates sent without a clip (stills)."""
    import cv2

    image = cv2.imdecode(np.frombuffer(candidate.snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ClipUnreadable("candidate has no clip and its snapshot cannot be decoded")
    return 0.0, image


def real_verify(settings: CloudSettings | None = None) -> VerifyFn:
    """The production verifier (default of VIGIA_VERIFIER); built once, so the models compile once.

    With settings that name a memory folder, the verifier consults each camera's false-positive memory there;
    in AWS mode without one, the memories the feedback loop publishes in the media bucket.
    """
    from cloud.verifier import ClipReadError, Verifier
    from models.fp_memory import FpMemoryStore

    memory_dir = settings.memory_dir if settings is not None else None
    if settings is not None and settings.store == "aws" and memory_dir is None:
        # AWS mode: the memories the feedback loop publishes in the media bucket, re-read every 30 s.
        from cloud.feedback.published import PublishedFpMemories
        from cloud.storage.s3 import S3ObjectStore

        assert settings.bucket  # CloudSettings requires it in AWS mode
        verifier = Verifier(fp_memories=PublishedFpMemories(S3ObjectStore(settings.bucket)))  # type: ignore[arg-type]
    else:
        verifier = Verifier(fp_memories=FpMemoryStore(memory_dir)) if memory_dir else Verifier()

    def verify(candidate: Candidate, clip_path: Path | None) -> Verdict:
        try:
            if clip_path is None:
                return verifier.verify(candidate, [snapshot_frame(candidate)])
            return verifier.verify_clip(candidate, clip_path)  # windows the segment around the event
        except ClipReadError as exc:  # retrying a corrupt file cannot help: dead-letter it
            raise ClipUnreadable(str(exc)) from exc

    return verify
