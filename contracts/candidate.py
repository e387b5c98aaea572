"""The candidate message: what the gateway sends up when it thinks it saw a person."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, field_validator

from contracts.clip import ClipRef
from contracts.ids import validate_camera_id, validate_event_id

InferencePrecision = Literal["f32", "bf16", "f16"]

MAX_SNAPSHOT_BYTES = 96 * 1024  # keeps a candidate under IoT Core's 128 KB message cap


def _b64_decode(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return base64.b64decode(value, validate=True)
    raise ValueError("expected base64 text or bytes")


Base64Bytes = Annotated[
    bytes,
    PlainValidator(_b64_decode),
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"),
]

CameraId = Annotated[str, AfterValidator(validate_camera_id)]


class Box(BaseModel):
    """A person box in frame pixels."""

    model_config = ConfigDict(extra="forbid")

    x1: float = Field(ge=0)
    y1: float = Field(ge=0)
    x2: float = Field(ge=0)
    y2: float = Field(ge=0)
    score: float = Field(ge=0, le=1)
    track_id: int | None = None

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


class TrackStats(BaseModel):
    """What the tracker knows of one object over the event."""

    model_config = ConfigDict(extra="forbid")

    track_id: int
    hits: int = Field(ge=0, description="frames where the detector matched the track")
    frames_seen: int = Field(ge=0, description="frames between first and last hit where the detector ran")
    first_ts: float = Field(description="seconds from the clip start")
    last_ts: float
    score_track: float = Field(ge=0, le=1, description="the score over the track that the decision used")
    score_max: float = Field(ge=0, le=1)
    score_mean: float = Field(ge=0, le=1)
    displacement: float = Field(ge=0, description="box-centre travel over the track, in box heights")
    mean_height_px: float = Field(ge=0)

    @property
    def duration_s(self) -> float:
        return self.last_ts - self.first_ts


class ModelRef(BaseModel):
    """Which model made a decision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    version: str
    precision: Literal["FP32", "FP16", "INT8"] = "FP32"
    ir_sha256: str | None = None
    # Additive (schema v1 unchanged): older senders omit it. Scores are comparable across hosts only at one
    # inference precision, so thresholds carry between gateways only when this matches.
    inference_precision: InferencePrecision | None = Field(
        default=None, description="floating-point precision the network ran in (f32, bf16 or f16); None: not reported"
    )


class Candidate(BaseModel):
    """Schema v1 of the gateway → cloud candidate message."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    event_id: str = Field(description="ULID, unique and time-sortable")
    gateway_id: str = Field(min_length=1, max_length=128, description="IoT thing name of the gateway")
    camera_id: CameraId
    site_id: str | None = Field(default=None, max_length=128, description="customer site, for routing alerts")
    source: str = Field(default="", max_length=512, description="clip or stream the event came from")
    started_at: datetime
    ended_at: datetime
    start_offset_s: float = Field(ge=0, description="event start, seconds from the clip start")
    end_offset_s: float = Field(ge=0)
    frame_width: int = Field(gt=0)
    frame_height: int = Field(gt=0)
    best_frame_offset_s: float = Field(ge=0)
    snapshot_jpeg: Base64Bytes = Field(description="best frame, JPEG, base64 on the wire")
    boxes: list[Box] = Field(description="person boxes on the best frame")
    tracks: list[TrackStats]
    score: float = Field(ge=0, le=1, description="the event's score: best track score")
    threshold: float = Field(ge=0, le=1, description="the camera threshold in force")
    model: ModelRef
    config_version: int | None = Field(default=None, description="shadow version of the config in force")
    reasons: list[str] = Field(description="why the gateway sent it")
    clip: ClipRef | None = None

    @field_validator("event_id")
    @classmethod
    def _check_event_id(cls, value: str) -> str:
        return validate_event_id(value)

    @field_validator("snapshot_jpeg")
    @classmethod
    def _check_snapshot(cls, value: bytes) -> bytes:
        if len(value) > MAX_SNAPSHOT_BYTES:
            raise ValueError(f"snapshot is {len(value)} bytes, over the {MAX_SNAPSHOT_BYTES} byte cap")
        if value and not value.startswith(b"\xff\xd8"):
            raise ValueError("snapshot is not a JPEG")
        return value
