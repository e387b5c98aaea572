"""The gateway's clip-upload port: moves a candidate's local clip segment to where the cloud can read it.

The publisher calls the uploader for a candidate whose clip is `kind="local"` BEFORE publishing it,
stores the returned reference in the outbox row (a restart does not upload again), then publishes the
candidate with that reference. Adapters: `LocalClips` (embedded default: the reference stays as it is),
`S3Uploader` (edge_agent/clip_upload/s3.py), `KvsUploader` (edge_agent/clip_upload/kvs.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from contracts import Candidate
from contracts.clip import ClipRef


class UploadRetryable(Exception):
    """A transient failure (network, throttling, service down): retried later, the candidate stays queued."""


class UploadRefused(Exception):
    """A permanent failure (missing file, access denied, bad bucket): the candidate is published without clip."""


@runtime_checkable
class ClipUploader(Protocol):
    """Uploads one candidate's clip segment and returns the reference the cloud resolves.

    Idempotent: uploading the same event twice gives the same reference and does not duplicate it.
    `clips_root` is the directory a `kind="local"` reference's `uri` is relative to.
    """

    kind: str

    def upload(self, candidate: Candidate, clips_root: Path) -> ClipRef: ...


class LocalClips:
    """Embedded default: the cloud reads the gateway's clip directory, so the reference stays as it is."""

    kind = "local"

    def upload(self, candidate: Candidate, clips_root: Path) -> ClipRef:
        if candidate.clip is None:
            raise UploadRefused(f"candidate {candidate.event_id} has no clip")
        return candidate.clip


def local_clip_path(candidate: Candidate, clips_root: Path) -> Path:
    """The file of a candidate's local clip, refusing a reference that escapes `clips_root`."""
    clip = candidate.clip
    if clip is None or clip.kind != "local":
        raise UploadRefused(f"candidate {candidate.event_id} has no local clip")
    root = clips_root.resolve()
    path = (root / clip.uri).resolve()
    if not path.is_relative_to(root):
        raise UploadRefused(f"clip {clip.uri!r} is outside the clip root")
    if not path.is_file():
        raise UploadRefused(f"clip file {clip.uri!r} is missing")
    return path


__all__ = ["ClipUploader", "LocalClips", "UploadRefused", "UploadRetryable", "local_clip_path"]
