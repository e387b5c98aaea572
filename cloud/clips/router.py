"""Picks the clip-source adapter by ClipRef.kind."""

from __future__ import annotations

from pathlib import Path

from cloud.ports import ClipRejected, ClipSource
from contracts import ClipRef


class ClipTransportNotSupported(ClipRejected, NotImplementedError):
    """A ClipRef kind this deployment has no adapter for."""


class ClipRouter:
    """A ClipSource that delegates to one adapter per kind ("local", "s3", "kvs")."""

    def __init__(self, adapters: dict[str, ClipSource]) -> None:
        self.adapters = dict(adapters)

    def fetch(self, ref: ClipRef, workdir: Path) -> Path:
        adapter = self.adapters.get(ref.kind)
        if adapter is None:
            raise ClipTransportNotSupported(f"no clip adapter configured for kind {ref.kind!r}")
        return adapter.fetch(ref, workdir)
