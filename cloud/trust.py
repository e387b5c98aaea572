"""What the cloud believes about a candidate: only what the connection proves (DESIGN.md "Trust boundaries").

In AWS mode the IoT rule that feeds the candidates queue wraps the gateway's message:

    SELECT * AS candidate, topic(2) AS thing_name, timestamp() AS received_at
    FROM 'vigia/+/cameras/+/candidates'

so the body is `{"candidate": {...}, "thing_name": "gw1", "received_at": 1764500000000}`. The thing name comes
from the topic, which the IoT policy confines to the certificate's own thing. On the embedded default the
in-process runtime (or an MQTT consumer, from the topic) supplies the same identity.

The body is data to validate, never an identity: its `gateway_id` must equal the thing name, its clip must lie
in that gateway's own prefix or stream, and its `site_id` is replaced by the registry's.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.ports import ClipRejected, MalformedMessage, PermanentError
from contracts import Candidate, ClipRef
from contracts.errors import describe_validation_error

log = logging.getLogger(__name__)

# AWS IoT thing names: 1-128 of letters, digits, ':', '_' and '-'.
THING_NAME_PATTERN = r"^[A-Za-z0-9:_-]{1,128}$"
_TOPIC_RE = re.compile(r"^vigia/(?P<thing>[^/+#]+)/cameras/(?P<camera>[^/+#]+)/candidates$")


class NoConnectionIdentity(PermanentError):
    """A bare candidate where the connection's identity is required (AWS mode): nobody vouches for it."""

    reason = "no_connection_identity"


class IdentityMismatch(PermanentError):
    """The body claims another gateway (or camera) than the connection it came on."""

    reason = "identity_mismatch"


class ThingNotRegistered(PermanentError):
    """The thing is not in our registry (or has no site): we cannot tell whose alert it would be."""

    reason = "thing_not_registered"


class ClipOutsideGateway(ClipRejected):
    """The clip reference points outside the sending gateway's own prefix, stream or folder."""

    reason = "clip_outside_gateway"


class NothingToVerify(PermanentError):
    """No clip and an empty snapshot: there is nothing the verifier could look at, now or later."""

    reason = "nothing_to_verify"


@dataclass(frozen=True)
class Identity:
    """Who sent a candidate, as the connection proves it."""

    thing_name: str
    topic_camera: str | None = None  # the camera in the topic, when the carrier knows it
    received_at_ms: int | None = None


class Envelope(BaseModel):
    """The IoT rule's output (issue 8's SQL). `topic_camera` is optional (`topic(4) AS topic_camera`)."""

    model_config = ConfigDict(extra="ignore")

    candidate: dict[str, Any]
    thing_name: str = Field(pattern=THING_NAME_PATTERN)
    received_at: int | None = Field(default=None, ge=0, description="IoT's timestamp(), epoch ms")
    topic_camera: str | None = Field(default=None, max_length=64)

    @property
    def identity(self) -> Identity:
        return Identity(self.thing_name, self.topic_camera, self.received_at)


def is_envelope(data: object) -> bool:
    return isinstance(data, dict) and "candidate" in data and "thing_name" in data


def parse_envelope(data: dict[str, Any]) -> Envelope:
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise MalformedMessage(f"invalid envelope: {describe_validation_error(exc)}") from exc


def identity_from_topic(topic: str) -> Identity:
    """`vigia/{thing}/cameras/{camera}/candidates` → the identity an MQTT consumer vouches for."""
    match = _TOPIC_RE.match(topic)
    if not match or not re.match(THING_NAME_PATTERN, match["thing"]):
        raise MalformedMessage(f"topic {topic!r} is not a candidates topic")
    return Identity(match["thing"], match["camera"])


def envelope_body(candidate: Candidate | dict[str, Any] | bytes | str, identity: Identity) -> str:
    """Wrap a candidate as the IoT rule would (for MQTT consumers and tests of the AWS path)."""
    if isinstance(candidate, Candidate):
        data: Any = json.loads(candidate.model_dump_json())
    elif isinstance(candidate, bytes | str):
        data = json.loads(candidate)
    else:
        data = candidate
    body: dict[str, Any] = {"candidate": data, "thing_name": identity.thing_name,
                            "received_at": identity.received_at_ms or int(time.time() * 1000)}
    if identity.topic_camera is not None:
        body["topic_camera"] = identity.topic_camera
    return json.dumps(body)


def check_identity(candidate: Candidate, identity: Identity) -> None:
    if candidate.gateway_id != identity.thing_name:
        raise IdentityMismatch(
            f"candidate claims gateway {candidate.gateway_id!r} but came from thing {identity.thing_name!r}")
    if identity.topic_camera is not None and identity.topic_camera != candidate.camera_id:
        raise IdentityMismatch(
            f"candidate claims camera {candidate.camera_id!r} but was published on camera "
            f"{identity.topic_camera!r}'s topic")


def gateway_prefix(thing: str) -> str:
    """The media-bucket prefix a gateway may upload to (and name clips in)."""
    return f"gateways/{thing}/"


def gateway_stream(thing: str, camera_id: str) -> str:
    """The Kinesis Video stream of one of the gateway's cameras."""
    return f"vigia-{thing}-{camera_id}"


def confine_clip(ref: ClipRef, thing: str, camera_id: str, media_bucket: str | None, *,
                 local_allowed: bool = True) -> None:
    """Refuse a clip reference outside the gateway's own prefix (s3), stream (kvs) or camera folder (local).

    `local_allowed=False` (AWS mode): a gateway-local path can never be fetched by the cloud, so waiting for it
    would only end in the dead-letter queue after every retry: refuse it at once."""
    if ref.kind == "s3":
        from cloud.clips.s3 import parse_s3_uri

        bucket, key = parse_s3_uri(ref.uri)
        if media_bucket is not None and bucket != media_bucket:
            raise ClipOutsideGateway(f"clip {ref.uri!r} is not in the media bucket")
        parts = key.split("/")
        if not key.startswith(gateway_prefix(thing)) or ".." in parts or "" in parts or "." in parts:
            raise ClipOutsideGateway(f"clip {ref.uri!r} is outside gateway {thing!r}'s prefix "
                                     f"{gateway_prefix(thing)!r}")
    elif ref.kind == "kvs":
        # The exact stream, not a name prefix: thing "gw1" must not reach "vigia-gw1-x-..." of thing "gw1-x".
        if ref.uri != f"kvs://{gateway_stream(thing, camera_id)}":
            raise ClipOutsideGateway(f"clip {ref.uri!r} is not gateway {thing!r}'s stream for camera "
                                     f"{camera_id!r} (kvs://{gateway_stream(thing, camera_id)})")
    elif ref.kind == "local":
        if not local_allowed:
            raise ClipRejected(f"clip {ref.uri!r} is on the gateway's disk: in AWS mode the gateway must upload "
                               "it (s3 or kvs) before publishing")
        parts = PurePosixPath(ref.uri.replace("\\", "/")).parts
        if len(parts) < 2 or parts[0] != camera_id or ".." in parts:
            raise ClipOutsideGateway(f"clip {ref.uri!r} is outside camera {camera_id!r}'s folder")


class IotThingRegistry:
    """Sites from IoT thing attributes (`site_id`), cached `ttl_s` (a site change shows after at most that)."""

    def __init__(self, client: Any | None = None, *, ttl_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        from cloud.aws import aws_client

        self._client = aws_client("iot", self._client)
        return self._client

    def site_of(self, thing: str) -> str | None:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(thing)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        from botocore.exceptions import ClientError

        try:
            attributes = self.client.describe_thing(thingName=thing).get("attributes") or {}
            site = attributes.get("site_id") or None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise  # throttling, access: transient for the runtime to retry
            site = None
        with self._lock:
            self._cache[thing] = (now, site)
        return site


class FileThingRegistry:
    """The embedded default's registry: `things.json`, `{"gw1": {"site_id": "A"}}` (or `{"gw1": "A"}`).

    Without the file, `site_of` says None for every thing and the pipeline keeps the local gateway's own site;
    once the file exists it is authoritative: a thing it does not list is refused. Re-read when it changes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._sites: dict[str, str] = {}

    def _load(self) -> dict[str, str] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                raw = json.loads(self.path.read_text())
                sites = {str(k): str(v["site_id"] if isinstance(v, dict) else v) for k, v in raw.items()}
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                # Keep the last good table: a half-written file must not open the door or close it.
                log.error("things registry unreadable, keeping the last good one: %s", exc,
                          extra={"path": str(self.path)})
                return self._sites
            self._stamp, self._sites = stamp, sites
        return self._sites

    def site_of(self, thing: str) -> str | None:
        sites = self._load()
        if sites is None:
            return None
        if thing not in sites:
            raise ThingNotRegistered(f"thing {thing!r} is not registered in {self.path.name}")
        return sites[thing]
