"""What a customer's subscriber receives about a confirmed person."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Notification(BaseModel):
    """Body of the alert. Timestamps let a benchmark measure candidate-received → alert-written latency."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    event_id: str
    camera_id: str
    gateway_id: str
    site_id: str | None = None
    decision: str
    score: float = Field(ge=0, le=1)
    started_at: str
    clip_key: str | None = None
    snapshot_key: str | None = None
    reasons: list[str] = Field(default_factory=list)
    received_at: datetime = Field(description="when the cloud took the candidate")
    verified_at: datetime
    notified_at: datetime = Field(description="when this notification was handed to the notifier")

    def attributes(self) -> dict[str, str]:
        """Filterable attributes (SNS message attributes); absent values are left out, never empty."""
        attrs = {
            "camera_id": self.camera_id,
            "gateway_id": self.gateway_id,
            "verdict": self.decision,
            "site_id": self.site_id,
        }
        return {k: v for k, v in attrs.items() if v}
