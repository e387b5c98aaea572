"""Clips in S3: `uri` is s3://bucket/key, downloaded into the caller's work folder."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from cloud.aws import aws_client
from cloud.clips.integrity import check_integrity
from cloud.ports import ClipNotFound, ClipRejected
from contracts import ClipRef

_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    if not match:
        raise ClipRejected(f"clip uri {uri!r} is not s3://bucket/key")
    return match["bucket"], match["key"]


class S3ClipSource:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client  # created on first use, so the embedded default never needs boto3

    @property
    def client(self) -> Any:
        self._client = aws_client("s3", self._client)
        return self._client

    def fetch(self, ref: ClipRef, workdir: Path) -> Path:
        if ref.kind != "s3":
            raise ClipRejected(f"S3ClipSource cannot fetch a {ref.kind!r} clip")
        bucket, key = parse_s3_uri(ref.uri)
        suffix = PurePosixPath(key).suffix
        # The local name is ours, never the key: keys may hold anything.
        dest = workdir / ("clip" + (suffix.lower() if _SAFE_SUFFIX.match(suffix) else ".bin"))
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(bucket, key, str(dest))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise ClipNotFound(f"clip {ref.uri!r} not found") from exc
            if code in ("403", "AccessDenied", "NoSuchBucket"):
                raise ClipRejected(f"clip {ref.uri!r} cannot be read: {code}") from exc
            raise
        check_integrity(ref, dest)
        return dest
