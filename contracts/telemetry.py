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
