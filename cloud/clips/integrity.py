"""Check a fetched clip against the size and checksum the gateway announced."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cloud.ports import ClipUnreadable
from contracts import ClipRef


def check_integrity(ref: ClipRef, path: Path) -> None:
    """A truncated or swapped clip must not be judged as if it were the event's footage."""
    if ref.size_bytes is not None and path.stat().st_size != ref.size_bytes:
        raise ClipUnreadable(f"clip {ref.uri!r} is {path.stat().st_size} bytes, expected {ref.size_bytes}")
    if ref.sha256 is not None:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != ref.sha256:
            raise ClipUnreadable(f"clip {ref.uri!r} does not match its sha256")
