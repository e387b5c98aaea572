"""Where review sets go: a folder (embedded default) or the review bucket (AWS). Same keys in both:
`<run id>/manifest.json`, `<run id>/manifest.csv`, `<run id>/<camera>/<event id>/clip.<ext>|snapshot.jpg`.

Media is copied from the media store: S3 to S3 as a server-side copy (nothing passes through the sampler),
anything else through memory.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from cloud.aws import aws_client
from cloud.ports import ObjectStore
from cloud.storage.keys import validate_key
from cloud.storage.s3 import S3ObjectStore

_SET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class MissingObject(LookupError):
    """A source object (clip, snapshot) the event names is not in the media store."""


class UnknownReviewSet(LookupError):
    """No review set of that name under the root."""


def validate_set_name(name: str) -> str:
    if not isinstance(name, str) or not _SET_NAME_RE.match(name):
        raise ValueError(f"review set name {name!r} is not valid")
    return name


class ReviewStore(Protocol):
    def copy_from(self, source: ObjectStore, source_key: str, dest_key: str, tags: dict[str, str]) -> None: ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when absent."""
        ...

    def set_names(self) -> list[str]:
        """Top-level folders (prefixes) under the root."""
        ...

    def describe(self) -> str: ...


class FolderReviewStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"review key {key!r} leaves the review folder")
        return path

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)  # a reader never sees half a manifest
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def copy_from(self, source: ObjectStore, source_key: str, dest_key: str, tags: dict[str, str]) -> None:
        try:
            data = source.get_bytes(source_key)
        except FileNotFoundError as exc:
            raise MissingObject(source_key) from exc
        except Exception as exc:  # an S3 source: NoSuchKey
            if _is_missing(exc):
                raise MissingObject(source_key) from exc
            raise
        self.put_bytes(dest_key, data, "application/octet-stream")

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def set_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _SET_NAME_RE.match(p.name))

    def describe(self) -> str:
        return str(self.root)


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in {"NoSuchKey", "404", "NotFound"}


class S3ReviewStore:
    def __init__(self, bucket: str, prefix: str = "", client: Any | None = None) -> None:
        if not bucket:
            raise ValueError("S3ReviewStore needs a bucket name (VIGIA_REVIEW_BUCKET)")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = aws_client("s3", client)

    def _key(self, key: str) -> str:
        return validate_key(self.prefix + validate_key(key))

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def copy_from(self, source: ObjectStore, source_key: str, dest_key: str, tags: dict[str, str]) -> None:
        if isinstance(source, S3ObjectStore):
            try:
                # Server-side copy; the review bucket gets its own tags, not the media lifecycle's.
                self.client.copy_object(
                    Bucket=self.bucket, Key=self._key(dest_key),
                    CopySource={"Bucket": source.bucket, "Key": validate_key(source_key)},
                    TaggingDirective="REPLACE", Tagging=urlencode(tags),
                )
            except Exception as exc:
                if _is_missing(exc):
                    raise MissingObject(source_key) from exc
                raise
            return
        try:
            data = source.get_bytes(source_key)
        except FileNotFoundError as exc:
            raise MissingObject(source_key) from exc
        self.client.put_object(Bucket=self.bucket, Key=self._key(dest_key), Body=data, Tagging=urlencode(tags))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except Exception as exc:
            if _is_missing(exc):
                raise FileNotFoundError(f"s3://{self.bucket}/{self._key(key)}") from exc
            raise

    def set_names(self) -> list[str]:
        names: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"):
            for entry in page.get("CommonPrefixes", []):
                name = entry["Prefix"][len(self.prefix):].rstrip("/")
                if _SET_NAME_RE.match(name):
                    names.append(name)
        return sorted(names)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def review_store_for(root: str | Path | ReviewStore) -> ReviewStore:
    """`s3://bucket[/prefix]` → the review bucket; a path → a folder; a store is returned as it is."""
    if isinstance(root, FolderReviewStore | S3ReviewStore):
        return root
    if isinstance(root, str) and root.startswith("s3://"):
        bucket, _, prefix = root[5:].partition("/")
        return S3ReviewStore(bucket, prefix)
    if isinstance(root, str | Path):
        return FolderReviewStore(Path(root))
    return root  # any other ReviewStore implementation
