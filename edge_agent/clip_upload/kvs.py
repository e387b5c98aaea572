"""Kinesis Video producer: a candidate's local segment → PutMedia on the camera's stream (no Python SDK exists).

Control plane through boto3 `kinesisvideo` (DescribeStream, CreateStream with its retention when missing,
GetDataEndpoint(PUT_MEDIA)); the media API by hand: a SigV4-signed (service "kinesisvideo") chunked POST
of Matroska fragments (`mkv.fragment_segment`: the segment re-muxed, producer timestamps = wall time) to
`{data endpoint}/putMedia`, then the ACK event stream read back: JSON objects with EventType BUFFERING,
RECEIVED, PERSISTED, ERROR (ErrorId, ErrorCode) and FragmentTimecode. Retryable failures (throttling,
5xx, connection lost, ErrorIds marked retryable) are retried with backoff and resumed after the last
PERSISTED fragment; permanent ones (invalid MKV, auth) raise UploadRefused. The clip is sent whole before
the ACKs are read: a segment is seconds of video, not a live feed.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from contracts import Candidate
from contracts.clip import ClipRef
from edge_agent.clip_upload import UploadRefused, UploadRetryable, local_clip_path
from edge_agent.clip_upload.mkv import FragmentedClip, MkvError, fragment_segment

log = logging.getLogger(__name__)

SERVICE = "kinesisvideo"
KVS_CONTENT_TYPE = "video/x-matroska"
DEFAULT_RETENTION_HOURS = 24 * 7
_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,256}$")
_CHUNK = 64 * 1024

# PutMedia ACK ErrorIds (Kinesis Video developer guide, PutMedia). Retryable: a new connection may succeed.
RETRYABLE_ERROR_IDS: dict[int, str] = {
    4000: "STREAM_READ_ERROR", 4003: "MAX_CONNECTION_DURATION_REACHED", 4008: "STREAM_NOT_ACTIVE",
    4503: "KMS_KEY_UNAVAILABLE", 5000: "INTERNAL_ERROR", 5001: "ARCHIVAL_ERROR",
}
REFUSED_ERROR_IDS: dict[int, str] = {
    4001: "MAX_FRAGMENT_SIZE_REACHED", 4002: "MAX_FRAGMENT_DURATION_REACHED",
    4004: "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS", 4005: "MORE_THAN_ALLOWED_TRACKS_FOUND",
    4006: "INVALID_MKV_DATA", 4007: "INVALID_PRODUCER_TIMESTAMP", 4009: "FRAGMENT_METADATA_LIMIT_REACHED",
    4010: "TRACK_NUMBER_MISMATCH", 4011: "FRAMES_MISSING_FOR_TRACK", 4500: "KMS_KEY_ACCESS_DENIED",
    4501: "KMS_KEY_DISABLED", 4502: "KMS_KEY_VALIDATION_ERROR", 4504: "KMS_KEY_INVALID_USAGE",
    4505: "KMS_KEY_INVALID_STATE", 4506: "KMS_KEY_NOT_FOUND", 4507: "STREAM_DELETED",
}
# HTTP-level errors of PutMedia and the control plane (x-amzn-ErrorType / botocore error codes).
RETRYABLE_ERROR_TYPES = frozenset({"ClientLimitExceededException", "ConnectionLimitExceededException",
                                   "ThrottlingException", "ServiceUnavailable", "InternalFailure"})
REFUSED_ERROR_TYPES = frozenset({"NotAuthorizedException", "AccessDeniedException", "UnrecognizedClientException",
                                 "InvalidSignatureException", "IncompleteSignature", "MissingAuthenticationToken",
                                 "ExpiredTokenException", "InvalidArgumentException", "InvalidEndpointException",
                                 "ResourceNotFoundException", "AccountStreamLimitExceededException",
                                 "InvalidDeviceException"})

AckEventType = Literal["BUFFERING", "RECEIVED", "PERSISTED", "ERROR", "IDLE"]


@dataclass(frozen=True)
class Ack:
    event_type: str
    fragment_timecode: int | None = None
    fragment_number: str | None = None
    error_id: int | None = None
    error_code: str | None = None


def parse_ack(obj: dict[str, Any]) -> Ack:
    """One ACK object; raises ValueError when it has no EventType (not an ACK at all)."""
    event = obj.get("EventType")
    if not isinstance(event, str):
        raise ValueError(f"ACK without EventType: {obj!r}")
    timecode = obj.get("FragmentTimecode")
    error_id = obj.get("ErrorId")
    return Ack(event, int(timecode) if timecode is not None else None,
               str(obj["FragmentNumber"]) if obj.get("FragmentNumber") is not None else None,
               int(error_id) if error_id is not None else None,
               str(obj["ErrorCode"]) if obj.get("ErrorCode") is not None else None)


class AckDecoder:
    """ACK objects from a byte stream that arrives in arbitrary pieces (objects may or may not be on lines)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = json.JSONDecoder()
        self._pending = b""

    def feed(self, data: bytes) -> list[Ack]:
        self._pending += data
        try:
            text = self._pending.decode("utf-8")
        except UnicodeDecodeError:
            return []  # a multi-byte character cut in two: wait for the rest
        self._pending = b""
        self._buffer += text
        acks: list[Ack] = []
        while True:
            stripped = self._buffer.lstrip()
            if not stripped:
                self._buffer = ""
                return acks
            try:
                obj, end = self._decoder.raw_decode(stripped)
            except json.JSONDecodeError:
                self._buffer = stripped  # an incomplete object: wait for more bytes
                return acks
            self._buffer = stripped[end:]
            if isinstance(obj, dict):
                acks.append(parse_ack(obj))


def error_action(error_id: int) -> Literal["retry", "refuse"]:
    """What an ERROR ACK means for the upload: unknown 5xxx codes are the service's, so retried."""
    if error_id in RETRYABLE_ERROR_IDS or (error_id >= 5000 and error_id not in REFUSED_ERROR_IDS):
        return "retry"
    return "refuse"


def error_name(error_id: int) -> str:
    return RETRYABLE_ERROR_IDS.get(error_id) or REFUSED_ERROR_IDS.get(error_id) or f"ERROR_{error_id}"


def stream_name(thing_name: str, camera_id: str) -> str:
    name = f"vigia-{thing_name}-{camera_id}"
    if not _STREAM_NAME.match(name):
        raise UploadRefused(f"stream name {name!r} is not a valid Kinesis Video stream name")
    return name


@dataclass
class _Session:
    """What one PutMedia connection achieved."""

    persisted: list[int]
    error: Ack | None = None
    lost: str | None = None  # why the connection ended early


class KvsUploader:
    """ClipUploader (kind "kvs"): one stream per camera, `vigia-{thing}-{camera}`, created with its retention."""

    kind = "kvs"

    def __init__(self, thing_name: str, *, region: str | None = None, endpoint_url: str | None = None,
                 data_endpoint: str | None = None, retention_hours: int = DEFAULT_RETENTION_HOURS,
                 session: Any | None = None, client: Any | None = None, attempts: int = 4,
                 backoff_s: float = 0.5, timeout_s: float = 30.0) -> None:
        """`endpoint_url` overrides the control plane's, `data_endpoint` the one GetDataEndpoint returns."""
        self.thing_name = thing_name
        self.retention_hours = retention_hours
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._data_endpoint_override = data_endpoint
        if session is None:
            import boto3  # imported here: only the kvs transport needs boto3

            session = boto3.session.Session(region_name=region)
        self._session = session
        self.region = region or session.region_name or "us-east-1"
        self._client = client or session.client(SERVICE, region_name=self.region, endpoint_url=endpoint_url)
        self._ready: dict[str, str] = {}  # stream → its PUT_MEDIA data endpoint
        self._list_endpoints: dict[str, str] = {}  # stream → its LIST_FRAGMENTS data endpoint
        self._archives: dict[str, Any] = {}  # data endpoint → its kinesis-video-archived-media client
        # Resume points of uploads that ran out of attempts (bounded: an old entry only costs a resend).
        self._resume: OrderedDict[str, int] = OrderedDict()

    # -- the port ------------------------------------------------------------------------------
    def upload(self, candidate: Candidate, clips_root: Path) -> ClipRef:
        if candidate.clip is not None and candidate.clip.kind == "kvs":
            return candidate.clip  # already uploaded (the outbox row holds the kvs reference)
        local = candidate.clip
        path = local_clip_path(candidate, clips_root)
        assert local is not None
        # Our own thing name, never the body's: the cloud accepts only `kvs://vigia-{thing}-...` of the sender.
        stream = stream_name(self.thing_name, candidate.camera_id)
        # Wall time of the segment's pts 0: the event start is `start_offset_s` on the source's time base,
        # the segment starts at `offset_s` on that same base.
        wall_zero_s = candidate.started_at.timestamp() - candidate.start_offset_s + local.offset_s
        try:
            clip = fragment_segment(path, round(wall_zero_s * 1000))
        except MkvError as exc:
            log.error("kvs clip cannot be fragmented", extra={"event_id": candidate.event_id, "error": str(exc)})
            raise UploadRefused(f"clip of {candidate.event_id} cannot be sent to Kinesis Video: {exc}") from exc
        endpoint = self.ensure_stream(stream)
        self.put_fragments(stream, endpoint, clip, candidate.event_id)
        log.info("kvs clip persisted", extra={"event_id": candidate.event_id, "stream": stream,
                                              "fragments": len(clip.fragments), "bytes": len(clip.stream())})
        return ClipRef(kind="kvs", uri=f"kvs://{stream}", content_type=KVS_CONTENT_TYPE, offset_s=local.offset_s,
                       fps=local.fps, start_ts=clip.first_ms / 1000, end_ts=clip.last_ms / 1000)

    # -- control plane -------------------------------------------------------------------------
    def ensure_stream(self, stream: str) -> str:
        """Describe the stream (create it with its retention when missing); its PUT_MEDIA data endpoint."""
        if stream in self._ready:
            return self._ready[stream]
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            try:
                status = self._client.describe_stream(StreamName=stream)["StreamInfo"]["Status"]
            except ClientError as exc:
                if _error_code(exc) != "ResourceNotFoundException":
                    raise
                self._client.create_stream(StreamName=stream, MediaType="video/h264",
                                           DataRetentionInHours=self.retention_hours)
                log.info("kvs stream created", extra={"stream": stream, "retention_hours": self.retention_hours})
                status = "CREATING"
            for _ in range(10):  # creation takes seconds; PutMedia on a CREATING stream fails
                if status == "ACTIVE":
                    break
                time.sleep(self.backoff_s)
                status = self._client.describe_stream(StreamName=stream)["StreamInfo"]["Status"]
            if status != "ACTIVE":
                raise UploadRetryable(f"stream {stream} is {status}, not ACTIVE yet")
            endpoint = self._data_endpoint_override or self._client.get_data_endpoint(
                StreamName=stream, APIName="PUT_MEDIA")["DataEndpoint"]
        except ClientError as exc:
            code = _error_code(exc)
            if code in REFUSED_ERROR_TYPES or code in ("403", "401"):
                log.error("kvs control plane refused", extra={"stream": stream, "error": code})
                raise UploadRefused(f"Kinesis Video refused stream {stream}: {code}") from exc
            raise UploadRetryable(f"Kinesis Video control plane failed for {stream}: {code}") from exc
        except BotoCoreError as exc:  # endpoint unreachable, credentials missing...
            if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
                raise UploadRefused(f"no AWS credentials for Kinesis Video: {exc}") from exc
            raise UploadRetryable(f"Kinesis Video control plane unreachable: {exc}") from exc
        self._ready[stream] = endpoint
        return endpoint

    # -- PutMedia ------------------------------------------------------------------------------
    def already_persisted(self, stream: str, clip: FragmentedClip) -> int | None:
        """The last of this clip's fragments the stream already holds (ListFragments), so a second upload
        of the same event (a restart before the outbox kept the reference) sends nothing twice. The
        fragment list is eventually consistent: a fragment persisted seconds ago may not show yet."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if stream not in self._list_endpoints:
                self._list_endpoints[stream] = self._data_endpoint_override or self._client.get_data_endpoint(
                    StreamName=stream, APIName="LIST_FRAGMENTS")["DataEndpoint"]
            endpoint = self._list_endpoints[stream]
            if endpoint not in self._archives:  # a client costs tens of ms to build: one per endpoint
                self._archives[endpoint] = self._session.client("kinesis-video-archived-media",
                                                                region_name=self.region, endpoint_url=endpoint)
            archive = self._archives[endpoint]
            window = {"StartTimestamp": clip.first_ms / 1000, "EndTimestamp": clip.last_ms / 1000}
            found: set[int] = set()
            pages = archive.get_paginator("list_fragments").paginate(StreamName=stream, FragmentSelector={
                "FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": window})
            for page in pages:
                found.update(round(f["ProducerTimestamp"].timestamp() * 1000) for f in page.get("Fragments", []))
        except (ClientError, BotoCoreError) as exc:  # not fatal: at worst a fragment is sent twice
            log.warning("kvs ListFragments failed", extra={"stream": stream, "error": str(exc)})
            return None
        held = None
        for fragment in clip.fragments:  # persisted in order: the held prefix is what may be skipped
            if fragment.timecode_ms not in found:
                break
            held = fragment.timecode_ms
        return held

    def put_fragments(self, stream: str, endpoint: str, clip: FragmentedClip, event_id: str) -> None:
        """PutMedia `clip` until every fragment is PERSISTED; raises UploadRetryable / UploadRefused."""
        expected = [f.timecode_ms for f in clip.fragments]
        last_persisted = self._resume.get(event_id)
        if last_persisted is None:
            last_persisted = self.already_persisted(stream, clip)
        why = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            remaining = [t for t in expected if last_persisted is None or t > last_persisted]
            if not remaining:
                break
            try:
                outcome = self._put_once(stream, endpoint, clip, last_persisted)
            except UploadRetryable as exc:
                why = str(exc)
                log.warning("kvs PutMedia retry", extra={"event_id": event_id, "attempt": attempt + 1, "error": why})
                continue
            if outcome.persisted:
                last_persisted = max(outcome.persisted)
            if outcome.error is not None and outcome.error.error_id is not None:
                name = outcome.error.error_code or error_name(outcome.error.error_id)
                if error_action(outcome.error.error_id) == "refuse":
                    log.error("kvs PutMedia refused", extra={"event_id": event_id, "stream": stream,
                                                             "error_id": outcome.error.error_id, "error": name})
                    raise UploadRefused(f"Kinesis Video refused the clip of {event_id} on {stream}: "
                                        f"{outcome.error.error_id} {name}")
                why = f"ACK error {outcome.error.error_id} {name}"
            elif outcome.lost:
                why = outcome.lost
            if all(last_persisted is not None and t <= last_persisted for t in expected):
                self._resume.pop(event_id, None)
                return
            why = why or "the stream ended before every fragment was persisted"
            log.warning("kvs PutMedia resume", extra={"event_id": event_id, "attempt": attempt + 1, "error": why,
                                                      "last_persisted_ms": last_persisted})
        else:
            if last_persisted is not None:
                self._resume[event_id] = last_persisted
                while len(self._resume) > 256:
                    self._resume.popitem(last=False)
            raise UploadRetryable(f"clip of {event_id} not persisted after {self.attempts} attempts: {why}")
        self._resume.pop(event_id, None)

    def _put_once(self, stream: str, endpoint: str, clip: FragmentedClip, after_ms: int | None) -> _Session:
        body = clip.stream(after_ms)
        first_ms = next(f.timecode_ms for f in clip.fragments if after_ms is None or f.timecode_ms > after_ms)
        url = endpoint.rstrip("/") + "/putMedia"
        headers = self._signed_headers(url, body, {
            "x-amzn-stream-name": stream,
            "x-amzn-fragment-timecode-type": "ABSOLUTE",
            "x-amzn-producer-start-timestamp": f"{first_ms / 1000:.3f}",
            "x-amzn-fragment-acknowledgment-required": "1",
        })
        parts = urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.netloc, timeout=self.timeout_s)
        session = _Session(persisted=[])
        try:
            try:
                conn.request("POST", parts.path or "/putMedia", body=_chunks(body), headers=headers,
                             encode_chunked=True)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise UploadRetryable(f"PutMedia connection failed: {exc}") from exc
            if response.status != 200:
                self._raise_http(response)
            decoder = AckDecoder()
            try:
                while True:
                    data = response.read1(_CHUNK)
                    if not data:
                        break
                    for ack in decoder.feed(data):
                        if ack.event_type == "PERSISTED" and ack.fragment_timecode is not None:
                            session.persisted.append(ack.fragment_timecode)
                        elif ack.event_type == "ERROR":
                            session.error = ack
                            return session
            except (OSError, http.client.HTTPException) as exc:  # IncompleteRead, reset, timeout
                session.lost = f"connection lost while reading ACKs: {type(exc).__name__}"
            except ValueError as exc:
                session.lost = f"unreadable ACK stream: {exc}"
        finally:
            conn.close()
        return session

    def _raise_http(self, response: http.client.HTTPResponse) -> None:
        payload = response.read(4096)
        kind = response.getheader("x-amzn-ErrorType", "") or ""
        try:
            body = json.loads(payload or b"{}")
            kind = kind or str(body.get("__type", ""))
            message = str(body.get("message") or body.get("Message") or "")
        except ValueError:
            message = payload[:200].decode("utf-8", "replace")
        kind = kind.split(":")[0]
        text = f"PutMedia HTTP {response.status} {kind}: {message}".strip()
        if kind in RETRYABLE_ERROR_TYPES or response.status >= 500 or response.status == 429:
            raise UploadRetryable(text)
        log.error("kvs PutMedia refused", extra={"status": response.status, "error": kind, "detail": message})
        raise UploadRefused(text)

    def _signed_headers(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self._session.get_credentials()
        if credentials is None:
            raise UploadRefused("no AWS credentials for Kinesis Video")
        request = AWSRequest(method="POST", url=url, headers=headers, data=body)
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(request)
        return dict(request.headers.items())


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), _CHUNK):
        yield body[start:start + _CHUNK]


def _error_code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def acks_from_lines(lines: Iterable[bytes]) -> list[Ack]:
    """ACKs of a whole response (tests, tools)."""
    decoder = AckDecoder()
    return [ack for line in lines for ack in decoder.feed(line)]


__all__ = ["Ack", "AckDecoder", "KvsUploader", "error_action", "parse_ack", "stream_name"]
