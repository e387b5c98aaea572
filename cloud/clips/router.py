"""Picks the clip-source adapter by ClipRef.kind."""

from __future__ import annotations

from pathlib import Path

from cloud.ports import ClipRejected, ClipSource
from contracts import ClipRef


class ClipTransportNotSupported(ClipRejected, NotImplementedError):
    """A ClipRef kind this deployment has no adapter for (e.g. Kinesis Video before its consumer exists)."""


class ClipRouter:
    """A ClipSource that delegates to one adapter per kind ("local", "s3", later "kvs")."""

    def __init__(self, adapters: dict[str, ClipSource]) -> None:
        self.adapters = dict(adapters)

    def fetch(self, ref: ClipRef, workdir: Path) -> Path:
        adapter = self.adapters.get(ref.kind)
        if adapter is None:
            if ref.kind == "kvs":
                raise ClipTransportNotSupported(
                    "clip kind 'kvs' needs a Kinesis Video clip adapter (GetClip consumer), "
                    "which is not implemented yet; send clips through S3 or a local folder"
                )
            raise ClipTransportNotSupported(f"no clip adapter configured for kind {ref.kind!r}")
        return adapter.fetch(ref, workdir)
