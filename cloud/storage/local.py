"""Object store in a local folder: same keys as S3, tags kept in a `<file>.tags.json` sidecar."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from cloud.storage.keys import validate_key
from models.files import atomic_write

TAGS_SUFFIX = ".tags.json"


class FolderObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_for(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key {key!r} leaves the store")
        return path

    def _put_tags(self, path: Path, tags: Mapping[str, str], content_type: str) -> None:
        meta = {"tags": dict(tags), "content_type": content_type}
        atomic_write(path.with_name(path.name + TAGS_SUFFIX), json.dumps(meta, sort_keys=True).encode())

    def put_bytes(self, key: str, data: bytes, content_type: str, tags: Mapping[str, str]) -> str:
        path = self.path_for(key)
        atomic_write(path, data)
        self._put_tags(path, tags, content_type)
        return path.as_uri()

    def put_file(self, key: str, path: Path, content_type: str, tags: Mapping[str, str]) -> str:
        dest = self.path_for(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._put_tags(dest, tags, content_type)
        return dest.as_uri()

    def get_bytes(self, key: str) -> bytes:
        return self.path_for(key).read_bytes()

    def get_tags(self, key: str) -> dict[str, str]:
        path = self.path_for(key)
        meta = json.loads(path.with_name(path.name + TAGS_SUFFIX).read_text())
        return dict(meta["tags"])
