"""Clips in a local folder (the embedded default): `uri` is a path relative to the clip root."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from cloud.clips.integrity import check_integrity
from cloud.ports import ClipNotFound, ClipRejected
from contracts import ClipRef


class LocalClipSource:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, uri: str) -> Path:
        """The file under the root that `uri` names; absolute paths, `..` and escaping links are refused."""
        if not uri or uri.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", uri):
            raise ClipRejected(f"clip uri {uri!r} must be a relative path under the clip root")
        rel = PurePosixPath(uri.replace("\\", "/"))
        if ".." in rel.parts or not rel.parts:
            raise ClipRejected(f"clip uri {uri!r} must not contain '..'")
        path = (self.root / Path(*rel.parts)).resolve()
        if not path.is_relative_to(self.root):  # a symlink pointing out of the root
            raise ClipRejected(f"clip uri {uri!r} leaves the clip root")
        return path

    def fetch(self, ref: ClipRef, workdir: Path) -> Path:
        if ref.kind != "local":
            raise ClipRejected(f"LocalClipSource cannot fetch a {ref.kind!r} clip")
        path = self.resolve(ref.uri)
        if not path.is_file():
            raise ClipNotFound(f"clip {ref.uri!r} not found under the clip root")
        check_integrity(ref, path)
        return path
