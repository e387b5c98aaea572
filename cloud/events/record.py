"""The stored event: the candidate's facts, the verifier's verdict, where the media is, and the alert state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from contracts import Candidate, Verdict, redact_uri

if TYPE_CHECKING:  # cloud.feedback imports this module: no import cycle at run time
    from cloud.feedback.model import FeedbackEntry

MAX_FEEDBACK_HISTORY = 20


def as_utc(value: datetime) -> datetime:
    """Timestamps without a zone are taken as UTC (the gateway writes UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_utc(value: datetime) -> str:
    """Fixed-width ISO text, so string order is time order (the camera/time index sorts on it)."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def score_bucket_for(started_at: datetime) -> str:
    """Partition of the score-band index: the UTC day. A sampler queries one day at a time."""
    return as_utc(started_at).strftime("%Y-%m-%d")


class EventRecord(BaseModel):
    """One item per event. `score` is the verifier's score (what the sampler bands on)."""

    model_config = ConfigDict(extra="forbid")

    event_id: str
    camera_id: str
    gateway_id: str
    site_id: str | None = None
    started_at: str = Field(description="ISO UTC, fixed width: sort key of the camera/time index")
    ended_at: str
    decision: str
    score: float = Field(ge=0, le=1, description="verifier score: sort key of the score-band index")
    score_bucket: str = Field(description="UTC day of the event: partition of the score-band index")
    edge_score: float = Field(ge=0, le=1)
    edge_threshold: float = Field(ge=0, le=1)
    edge_model: str = Field(description="model_id@version that raised the candidate")
    verifier_models: list[str] = Field(default_factory=list, description="model_id@version of the verifier")
    config_version: int | None = None
    clip_key: str | None = None
    snapshot_key: str | None = None
    verdict_json: str = Field(description="the full verdict, returned as-is on redelivery")
    candidate_json: str | None = Field(
        default=None,
        description="the candidate message minus its snapshot (the gateway's boxes in frame pixels, frame size, "
        "best-frame offset, tracks, reasons): what a reviewer needs to see the gateway's view; None on older items",
    )
    created_at: str
    expires_at: int = Field(description="epoch seconds; DynamoDB TTL attribute")
    notified: bool = False
    notified_at: str | None = None
    notify_claimed_at: float | None = Field(default=None, description="epoch s of the live notification claim")
    notification_id: str | None = None
    label: str | None = Field(default=None, description="latest feedback label (person, not-person, unsure)")
    labeled_at: str | None = Field(default=None, description="ISO UTC time of the latest label")
    feedback_json: str = Field(default="[]", description="feedback history, oldest first, last 20 entries")

    @classmethod
    def build(
        cls,
        candidate: Candidate,
        verdict: Verdict,
        *,
        clip_key: str | None,
        snapshot_key: str | None,
        now: datetime,
        ttl_days: int,
    ) -> EventRecord:
        return cls(
            event_id=candidate.event_id,
            camera_id=candidate.camera_id,
            gateway_id=candidate.gateway_id,
            site_id=candidate.site_id,
            started_at=iso_utc(candidate.started_at),
            ended_at=iso_utc(candidate.ended_at),
            decision=verdict.decision,
            score=verdict.score,
            score_bucket=score_bucket_for(candidate.started_at),
            edge_score=candidate.score,
            edge_threshold=candidate.threshold,
            edge_model=f"{candidate.model.model_id}@{candidate.model.version}",
            verifier_models=[f"{m.model_id}@{m.version}" for m in verdict.models],
            config_version=candidate.config_version,
            clip_key=clip_key,
            snapshot_key=snapshot_key,
            verdict_json=verdict.model_dump_json(),
            candidate_json=candidate.model_copy(update={"source": redact_uri(candidate.source)}).model_dump_json(
                exclude={"snapshot_jpeg"}
            ),
            created_at=iso_utc(now),
            expires_at=int((as_utc(now) + timedelta(days=ttl_days)).timestamp()),
        )

    def verdict(self) -> Verdict:
        return Verdict.model_validate_json(self.verdict_json)

    def candidate_facts(self) -> dict | None:
        """The stored candidate (without its snapshot) as a dict, or None for items written before it was kept."""
        return json.loads(self.candidate_json) if self.candidate_json else None

    def feedback(self) -> list[FeedbackEntry]:
        from cloud.feedback.model import history_of

        return history_of(self.feedback_json)

    def with_feedback(self, entry: FeedbackEntry) -> EventRecord | None:
        """The record with `entry` as its latest label, or None when it already is (same label, same person,
        same note): feedback is idempotent."""
        from cloud.feedback.model import history_json

        history = self.feedback()
        if history and history[-1].same_as(entry) and self.label == entry.label:
            return None
        history.append(entry)
        return self.model_copy(update={
            "label": entry.label, "labeled_at": iso_utc(entry.at),
            "feedback_json": history_json(history[-MAX_FEEDBACK_HISTORY:]),
        })
