"""The verifier's decision on a candidate."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.candidate import Box, ModelRef
from contracts.ids import validate_event_id

Decision = Literal["confirmed", "rejected", "uncertain"]


class Verdict(BaseModel):
    """Schema v1 of a verification result."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    event_id: str
    camera_id: str
    gateway_id: str
    decision: Decision
    score: float = Field(ge=0, le=1, description="verifier's person score for the event")
    reasons: list[str]
    boxes: list[Box] = Field(default_factory=list, description="boxes the verifier confirmed, best frame")
    models: list[ModelRef]
    frames_examined: int = Field(ge=0)
    verified_at: datetime
    processing_ms: float = Field(ge=0)

    @field_validator("event_id")
    @classmethod
    def _check_event_id(cls, value: str) -> str:
        return validate_event_id(value)
