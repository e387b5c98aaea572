"""Read the media the pipeline stored (snapshots, clips) by key, with byte ranges, from a folder or S3.

The ObjectStore port only has whole-object reads; a browser's <video> seeks with Range requests, so the
console reads through this small adapter instead: `stat` (size, content type) and `read` (a byte range,
in chunks). Keys come from the event record and are validated again (`validate_key`) before any I/O.
"""

from __future__ import annotations

import json
import mimetypes
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cloud.storage.keys import validate_key
from cloud.storage.local import TAGS_SUFFIX

CHUNK = 256 * 1024


@dataclass(frozen=True)
class MediaInfo:
    size: int
    content_type: str


class MediaReader(Protocol):
    def stat(self, key: str) -> MediaInfo | None:
        """Size and content type, or None when the object is not there."""
        ...

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes start..end (inclusive), in chunks."""
        ...

    def copy_to(self, key: str, dest: Path) -> Path:
        """The whole object as a local file (for remuxing)."""
        ...


def _guess_type(key: str) -> str:
    known = mimetypes.guess_type(key)[0]
    return known or {".mkv": "video/x-matroska"}.get(Path(key).suffix, "application/octet-stream")


class FolderMedia:
    """The embedded object store's folder (`FolderObjectStore` layout: file + `<file>.tags.json`)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key {key!r} leaves the store")
        return path

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def stat(self, key: str) -> MediaInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        content_type = _guess_type(key)
        try:
            meta = json.loads(path.with_name(path.name + TAGS_SUFFIX).read_text())
            content_type = str(meta.get("content_type") or content_type)
        except (OSError, ValueError, AttributeError):
            pass  # no sidecar: the extension decides
        return MediaInfo(path.stat().st_size, content_type)

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        with self._path(key).open("rb") as fh:
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def copy_to(self, key: str, dest: Path) -> Path:
        shutil.copyfile(self._path(key), dest)
        return dest


class S3Media:
    """The media bucket in AWS mode: HeadObject for stat, ranged GetObject for reads."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        from cloud.aws import aws_client

        self.bucket = bucket
        self.client = aws_client("s3", client)

    def stat(self, key: str) -> MediaInfo | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=validate_key(key))
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return MediaInfo(int(head["ContentLength"]), head.get("ContentType") or _guess_type(key))

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=validate_key(key), Range=f"bytes={start}-{end}")["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def copy_to(self, key: str, dest: Path) -> Path:
        self.client.download_file(self.bucket, validate_key(key), str(dest))
        return dest
