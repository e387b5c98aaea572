"""The wire contract that gateway and cloud both speak. Pydantic models only, no I/O."""

from contracts.camera_config import (
    CameraConfig,
    FilterSettings,
    FpMemoryRef,
    GatewayConfig,
    MotionSettings,
    Point,
    Polygon,
    TrackingSettings,
)
from contracts.candidate import Box, Candidate, ModelRef, TrackStats
from contracts.clip import ClipRef
from contracts.ids import (
    CAMERA_ID_PATTERN,
    EVENT_ID_PATTERN,
    event_id_time,
    new_event_id,
    validate_camera_id,
    validate_event_id,
)
from contracts.redact import redact_uri
from contracts.verdict import Decision, Verdict

SCHEMA_VERSION = 1

__all__ = [
    "CAMERA_ID_PATTERN",
    "EVENT_ID_PATTERN",
    "SCHEMA_VERSION",
    "Box",
    "CameraConfig",
    "Candidate",
    "ClipRef",
    "Decision",
    "FilterSettings",
    "FpMemoryRef",
    "GatewayConfig",
    "ModelRef",
    "MotionSettings",
    "Point",
    "Polygon",
    "TrackStats",
    "TrackingSettings",
    "Verdict",
    "event_id_time",
    "new_event_id",
    "redact_uri",
    "validate_camera_id",
    "validate_event_id",
]
