"""Adapts the verifier package (`cloud.verifier.Verifier.verify(candidate, frames)`) to the pipeline's
`verify(candidate, clip_path)` callable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cloud.clips.frames import read_frames
from cloud.ports import ClipUnreadable, VerifyFn
from contracts import Candidate, Verdict


def candidate_frames(candidate: Candidate, clip_path: Path | None) -> Iterator[tuple[float, np.ndarray]]:
    """The clip's frames (lazily), or the snapshot as a one-frame clip when no clip came with it."""
    if clip_path is not None:
        return read_frames(clip_path)
    import cv2

    image = cv2.imdecode(np.frombuffer(candidate.snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ClipUnreadable("candidate has no clip and its snapshot cannot be decoded")
    return iter([(candidate.best_frame_offset_s, image)])


def real_verify() -> VerifyFn:
    """The production verifier (default of VIGIA_VERIFIER); imported here so the model loads once."""
    from cloud.verifier import Verifier  # written by the verifier's author

    verifier = Verifier()

    def verify(candidate: Candidate, clip_path: Path | None) -> Verdict:
        return verifier.verify(candidate, candidate_frames(candidate, clip_path))

    return verify
