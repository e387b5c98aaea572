"""What the sampler picks and how many: every knob with its bounds, and the run's window."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from cloud.events.record import as_utc

# One score-band query (two with the band) per UTC day of the window: a year at most per run.
MAX_WINDOW_DAYS = 366


def _verifier_confirm_threshold() -> float:
    """The confirm threshold the verifier decides with (its default settings; the verifier takes no others)."""
    from cloud.verifier.settings import VerifierSettings

    return VerifierSettings().confirm_threshold


class SamplingPolicy(BaseModel):
    """Strategies and caps of one sampling run. The same policy over the same store picks the same events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    band: float = Field(default=0.1, gt=0, le=0.5, description="± around a threshold that counts as 'near'")
    per_camera: int = Field(default=20, ge=1, le=10_000, description="most events picked from one camera")
    max_events: int = Field(default=200, ge=1, le=100_000, description="most events picked in one run")
    random_share: float = Field(default=0.02, ge=0, le=1, description="share of the window picked at random")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="random pick seed (same seed, same picks)")
    confirm_threshold: float = Field(
        default_factory=_verifier_confirm_threshold, ge=0.01, le=0.99,
        description="the verifier's confirm threshold (near-threshold band of the verifier's score)",
    )
    gateway_sure_score: float = Field(
        default=0.8, gt=0, le=1,
        description="a gateway track score at least this (and a band over the camera's threshold) is 'sure': "
        "the verifier rejecting it is a disagreement",
    )
    scan_limit: int = Field(
        default=20_000, ge=1, le=1_000_000, description="most events read per UTC day of the window"
    )

    def digest(self) -> str:
        """Short fingerprint of the knobs, part of the run id (another policy, another review set)."""
        text = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Window:
    """[since, until) in UTC, on the event's start time."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", as_utc(self.since))
        object.__setattr__(self, "until", as_utc(self.until))
        if self.since >= self.until:
            raise ValueError(f"the window is empty: since {self.since.isoformat()} is not before "
                             f"until {self.until.isoformat()}")
        if self.until - self.since > timedelta(days=MAX_WINDOW_DAYS):
            raise ValueError(f"the window is longer than {MAX_WINDOW_DAYS} days; sample it in smaller windows")

    @classmethod
    def ending(cls, until: datetime, hours: float = 24.0) -> Window:
        return cls(as_utc(until) - timedelta(hours=hours), as_utc(until))

    def days(self) -> list[str]:
        """The UTC days (partitions of the score-band index) the window touches."""
        last = (self.until - timedelta(microseconds=1)).date()
        day, out = self.since.date(), []
        while day <= last:
            out.append(day.isoformat())
            day += timedelta(days=1)
        return out

    def holds(self, when: datetime) -> bool:
        return self.since <= as_utc(when) < self.until

    def label(self) -> str:
        return f"{self.since:%Y%m%dT%H%M%SZ}_{self.until:%Y%m%dT%H%M%SZ}"
