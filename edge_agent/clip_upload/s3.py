"""S3 clip uploader: a candidate's segment goes to `gateways/{thing}/clips/{camera}/{event_id}.{ext}`.

The gateway writes only under its own prefix (its role allows s3:PutObject on `gateways/${thing}/*` and
nothing else), and the cloud refuses a clip reference outside the sending gateway's prefix. The upload
is idempotent: the key is derived from the event id, so a second upload overwrites the same object with
the same bytes. (No HeadObject check first: that would need s3:GetObject, which the gateway lacks.)

Two ways to authenticate:
- boto3 with the default credential chain. On Greengrass the token exchange service sets
  AWS_CONTAINER_CREDENTIALS_FULL_URI (and its token) in the component's environment, and boto3's chain
  picks it up by itself, refreshing the short-lived role credentials as they expire;
- a presigned PUT URL per key from a `presign(key)` callable (e.g. a cloud endpoint that hands them out):
  plain urllib, no boto3 on the gateway.
S3 checks the body against Content-MD5 (both ways) and x-amz-checksum-sha256 (boto3 way), so a segment
damaged in transit is refused by S3 rather than stored.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts import Candidate
from contracts.clip import ClipRef
from edge_agent.clip_upload import UploadRefused, UploadRetryable, local_clip_path

log = logging.getLogger(__name__)

# S3 error codes that a later attempt can get past; everything else from S3 is a refusal.
_RETRYABLE_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
    "InternalError", "ServiceUnavailable", "ExpiredToken", "ExpiredTokenException", "BadDigest",
    "RequestTimeoutException", "500", "502", "503", "504",
})


def clip_key(thing: str, camera_id: str, event_id: str, suffix: str) -> str:
    """The object key of an event's clip under the gateway's own prefix."""
    ext = suffix.lstrip(".").lower() or "bin"
    return f"gateways/{thing}/clips/{camera_id}/{event_id}.{ext}"


def _digests(path: Path) -> tuple[bytes, str, str]:
    """(body, sha256 hex, base64 MD5) of a clip file; segments are a few MB, read at once."""
    body = path.read_bytes()
    return body, hashlib.sha256(body).hexdigest(), base64.b64encode(hashlib.md5(body).digest()).decode()


class S3Uploader:
    kind = "s3"

    def __init__(
        self,
        bucket: str,
        thing: str,
        *,
        client: Any | None = None,
        presign: Callable[[str], str] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        if not bucket:
            raise ValueError("the S3 clip uploader needs a bucket (--clip-bucket)")
        if not thing:
            raise ValueError("the S3 clip uploader needs the gateway's thing name")
        self.bucket, self.thing = bucket, thing
        self._client = client
        self._presign = presign
        self.timeout_s = timeout_s

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # only on gateways that upload with boto3
            from botocore.config import Config

            # the publisher backs off between attempts itself: botocore only retries a blip
            self._client = boto3.client("s3", config=Config(
                retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=self.timeout_s))
        return self._client

    def upload(self, candidate: Candidate, clips_root: Path) -> ClipRef:
        path = local_clip_path(candidate, clips_root)
        assert candidate.clip is not None  # local_clip_path refuses a candidate without one
        try:
            body, sha256, md5 = _digests(path)
        except OSError as exc:
            raise UploadRefused(f"clip file {candidate.clip.uri!r} cannot be read: {exc.strerror or exc}") from exc
        if candidate.clip.sha256 is not None and candidate.clip.sha256 != sha256:
            raise UploadRefused(f"clip file {candidate.clip.uri!r} changed on disk since it was recorded")
        key = clip_key(self.thing, candidate.camera_id, candidate.event_id, path.suffix)
        content_type = candidate.clip.content_type
        if self._presign is not None:
            self._put_presigned(key, body, md5, content_type)
        else:
            self._put_boto3(key, body, sha256, md5, content_type)
        log.debug("clip object written", extra={"bucket": self.bucket, "key": key, "size_bytes": len(body)})
        return candidate.clip.model_copy(update={
            "kind": "s3", "uri": f"s3://{self.bucket}/{key}", "sha256": sha256, "size_bytes": len(body),
        })

    def _put_boto3(self, key: str, body: bytes, sha256: str, md5: str, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, ContentMD5=md5,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            text = f"S3 PutObject {self.bucket}/{key}: {code} {error.get('Message', '')}".strip()
            if code in _RETRYABLE_CODES or (isinstance(status, int) and (status >= 500 or status == 429)):
                raise UploadRetryable(text) from exc
            raise UploadRefused(text) from exc
        except NoCredentialsError as exc:
            # on Greengrass the token exchange service may not be up yet: try again later
            raise UploadRetryable(f"no AWS credentials yet: {exc}") from exc
        except BotoCoreError as exc:  # endpoint unreachable, connection reset, read timeout
            raise UploadRetryable(f"S3 unreachable: {exc}") from exc

    def _put_presigned(self, key: str, body: bytes, md5: str, content_type: str) -> None:
        assert self._presign is not None
        try:
            url = self._presign(key)
        except Exception as exc:  # the presigning service is down or unreachable
            raise UploadRetryable(f"no presigned URL for {key}: {exc}") from exc
        request = urllib.request.Request(url, data=body, method="PUT", headers={
            "Content-Type": content_type, "Content-MD5": md5, "Content-Length": str(len(body))})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            text = f"S3 presigned PUT {key}: HTTP {exc.code} {exc.read()[:300]!r}"
            if exc.code >= 500 or exc.code in (408, 429):
                raise UploadRetryable(text) from exc
            raise UploadRefused(text) from exc
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
            raise UploadRetryable(f"S3 unreachable: {exc}") from exc
