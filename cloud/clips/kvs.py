"""Clips in Kinesis Video: `uri` is kvs://stream-name, the range the ClipRef's producer timestamps.

GetDataEndpoint(GET_CLIP) on the control plane, then GetClip (boto3 `kinesis-video-archived-media` at that
endpoint) for [start_ts, end_ts] as PRODUCER_TIMESTAMP; the returned Matroska is written to the caller's
work folder and decoded like any segment (`cloud.clips.frames`), frames keeping their time stamps.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.aws import aws_client
from cloud.ports import ClipNotFound, ClipRejected, ClipUnreadable, TransientError
from contracts import ClipRef

_KVS_URI = re.compile(r"^kvs://(?P<stream>[a-zA-Z0-9_.-]{1,256})$")
# GetClip answers these when the stream holds what it cannot package (not worth retrying).
_UNREADABLE = frozenset({"InvalidCodecPrivateDataException", "MissingCodecPrivateDataException",
                         "UnsupportedStreamMediaTypeException", "InvalidMediaFrameException"})
_REJECTED = frozenset({"NotAuthorizedException", "AccessDeniedException", "InvalidArgumentException",
                       "NoDataRetentionException", "UnrecognizedClientException", "InvalidSignatureException"})
_CHUNK = 1 << 20


def parse_kvs_uri(uri: str) -> str:
    match = _KVS_URI.match(uri)
    if not match:
        raise ClipRejected(f"clip uri {uri!r} is not kvs://stream-name")
    return match["stream"]


class KvsClipSource:
    """ClipSource for kind "kvs". `client`: a `kinesisvideo` client; `archive_factory(endpoint)` makes the
    `kinesis-video-archived-media` client for a data endpoint (both default to boto3 from the environment)."""

    def __init__(self, client: Any | None = None, archive_factory: Any | None = None) -> None:
        self._client = client
        self._archive_factory = archive_factory
        self._endpoints: dict[str, str] = {}
        self._archives: dict[str, Any] = {}  # data endpoint → client (tens of ms to build one)

    @property
    def client(self) -> Any:
        self._client = aws_client("kinesisvideo", self._client)
        return self._client

    def _archive(self, endpoint: str) -> Any:
        if endpoint not in self._archives:
            self._archives[endpoint] = (self._archive_factory(endpoint) if self._archive_factory is not None
                                        else aws_client("kinesis-video-archived-media", endpoint_url=endpoint))
        return self._archives[endpoint]

    def fetch(self, ref: ClipRef, workdir: Path) -> Path:
        if ref.kind != "kvs":
            raise ClipRejected(f"KvsClipSource cannot fetch a {ref.kind!r} clip")
        stream = parse_kvs_uri(ref.uri)
        if ref.start_ts is None or ref.end_ts is None or ref.end_ts < ref.start_ts:
            raise ClipRejected(f"kvs clip {ref.uri!r} needs start_ts <= end_ts")
        from botocore.exceptions import BotoCoreError, ClientError

        dest = workdir / "clip.mkv"
        try:
            if stream not in self._endpoints:
                self._endpoints[stream] = self.client.get_data_endpoint(
                    StreamName=stream, APIName="GET_CLIP")["DataEndpoint"]
            window = {"StartTimestamp": datetime.fromtimestamp(ref.start_ts, UTC),
                      "EndTimestamp": datetime.fromtimestamp(ref.end_ts, UTC)}
            response = self._archive(self._endpoints[stream]).get_clip(StreamName=stream, ClipFragmentSelector={
                "FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": window})
            payload = response["Payload"]
            with dest.open("wb") as fh:
                for chunk in iter(lambda: payload.read(_CHUNK), b""):
                    fh.write(chunk)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "ResourceNotFoundException":  # no fragment (yet) in range: the gateway may be uploading
                raise ClipNotFound(f"clip {ref.uri!r} [{ref.start_ts}, {ref.end_ts}] not in the stream") from exc
            if code in _UNREADABLE:
                raise ClipUnreadable(f"clip {ref.uri!r} cannot be packaged: {code}") from exc
            if code in _REJECTED:
                raise ClipRejected(f"clip {ref.uri!r} cannot be read: {code}") from exc
            raise TransientError(f"GetClip of {ref.uri!r} failed: {code}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"GetClip of {ref.uri!r} failed: {exc}") from exc
        if dest.stat().st_size == 0:
            raise ClipUnreadable(f"clip {ref.uri!r}: GetClip returned no bytes")
        return dest
