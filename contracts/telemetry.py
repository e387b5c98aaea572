"""Gateway → cloud liveness message, sent on `topics.heartbeat(thing)`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Heartbeat(BaseModel):
    """Schema v1 of the periodic heartbeat: the gateway is alive and how far its outbox is behind."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    gateway_id: str = Field(min_length=1, max_length=128, description="IoT thing name of the gateway")
    sent_at: datetime
    uptime_s: float = Field(ge=0)
    outbox_pending: int = Field(ge=0, description="candidates accepted but not yet acknowledged")
    sent_total: int = Field(ge=0, description="messages acknowledged since start")
    config_version: int | None = Field(default=None, description="shadow version of the config in force")
    agent_version: str | None = Field(default=None, max_length=64)
    cameras: dict[str, CameraStatus] = Field(
        default_factory=dict, max_length=64, description="per-camera source health, by camera id"
    )


CameraState = Literal["starting", "connecting", "connected", "stalled", "reconnecting", "finished", "stopped", "failed"]


class CameraStatus(BaseModel):
    """Health of one camera's source as the agent sees it, carried in the heartbeat."""

    model_config = ConfigDict(extra="forbid")

    state: CameraState = Field(description="what the camera's source is doing now")
    source: str = Field(default="", max_length=512, description="the source with credentials redacted")
    last_frame_at: datetime | None = Field(default=None, description="wall time of the last frame received")
    frames: int = Field(default=0, ge=0, description="frames received since the agent started")
    dropped_frames: int = Field(default=0, ge=0, description="frames skipped because the agent fell behind")
    reconnects: int = Field(default=0, ge=0, description="times the source was reopened")
    last_error: str | None = Field(default=None, max_length=512, description="the last source error, redacted")
    candidates: int = Field(default=0, ge=0, description="candidates accepted into the outbox since start")


Heartbeat.model_rebuild()
