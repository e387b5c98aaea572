"""Which events a review set gets, and why: the strategies, then the caps. Pure functions over records.

Every strategy that picks an event adds its reason; an event appears once with all of them. Caps keep
the most useful events first: customer flags, then disagreements, then near-threshold, then random.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cloud.events.record import EventRecord
from cloud.sampler.policy import SamplingPolicy

FLAGGED = "flagged_by_customer"
GATEWAY_SURE_VERIFIER_REJECTED = "disagreement_gateway_sure_verifier_rejected"
CONFIRMED_NEAR_BOUND = "disagreement_confirmed_near_bound"
NEAR_VERIFIER_THRESHOLD = "near_verifier_threshold"
NEAR_EDGE_THRESHOLD = "near_edge_threshold"
RANDOM = "random"

# Lower comes first when a cap must choose.
PRIORITY = {
    FLAGGED: 0, GATEWAY_SURE_VERIFIER_REJECTED: 1, CONFIRMED_NEAR_BOUND: 2, NEAR_VERIFIER_THRESHOLD: 3,
    NEAR_EDGE_THRESHOLD: 4, RANDOM: 5,
}
# Floating-point slack so that a score exactly one band from the threshold counts as inside it.
_EPS = 1e-9


@dataclass
class Pick:
    record: EventRecord
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def add(self, reason: str, detail: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
            self.details.append(detail)

    def sort_key(self, policy: SamplingPolicy) -> tuple:
        """Best reason first, then the closest to the verifier's threshold, then the event id (stable)."""
        best = min(PRIORITY[r] for r in self.reasons)
        return best, abs(self.record.score - policy.confirm_threshold), self.record.event_id


@dataclass
class Selection:
    picks: list[Pick]
    considered: int
    capped: int = 0


def random_draw(seed: int, event_id: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, event id): the same events on every run and host."""
    digest = hashlib.sha256(f"{seed}:{event_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def label_of(record: EventRecord) -> str | None:
    """The customer's latest label (the feedback fields exist once feedback is deployed)."""
    return getattr(record, "label", None)


def reasons_for(record: EventRecord, policy: SamplingPolicy, flagged: bool) -> Pick:
    """Every strategy's opinion of one event."""
    pick = Pick(record)
    band = policy.band + _EPS
    if flagged and label_of(record):
        pick.add(FLAGGED, f"customer labeled it {label_of(record)}")
    sure = max(policy.gateway_sure_score, record.edge_threshold + policy.band)
    if record.decision == "rejected" and record.edge_score >= sure - _EPS:
        pick.add(GATEWAY_SURE_VERIFIER_REJECTED,
                 f"gateway track score {record.edge_score:.3f} >= {sure:.3f} but the verifier rejected it")
    if record.decision == "confirmed" and record.score <= policy.confirm_threshold + band:
        pick.add(CONFIRMED_NEAR_BOUND,
                 f"verifier confirmed at {record.score:.3f}, within {policy.band:.2f} of its bound "
                 f"{policy.confirm_threshold:.2f}")
    if abs(record.score - policy.confirm_threshold) <= band:
        pick.add(NEAR_VERIFIER_THRESHOLD,
                 f"verifier score {record.score:.3f} within {policy.band:.2f} of {policy.confirm_threshold:.2f}")
    if abs(record.edge_score - record.edge_threshold) <= band:
        pick.add(NEAR_EDGE_THRESHOLD,
                 f"gateway score {record.edge_score:.3f} within {policy.band:.2f} of the camera's threshold "
                 f"{record.edge_threshold:.2f}")
    draw = random_draw(policy.seed, record.event_id)
    if draw < policy.random_share:
        pick.add(RANDOM, f"random share {policy.random_share:g} (seed {policy.seed})")
    return pick


def select(
    records: Iterable[EventRecord], policy: SamplingPolicy, *, flagged_ids: Iterable[str] = (),
) -> Selection:
    """Apply every strategy to the records (each event once, whatever the input repeats), then the caps.

    `flagged_ids`: events a customer labeled in the window (a label on a record counts on its own too).
    """
    unique: dict[str, EventRecord] = {}
    for record in records:
        unique.setdefault(record.event_id, record)
    flagged = set(flagged_ids)
    candidates = []
    for record in unique.values():
        pick = reasons_for(record, policy, flagged=record.event_id in flagged or label_of(record) is not None)
        if pick.reasons:
            candidates.append(pick)
    candidates.sort(key=lambda p: p.sort_key(policy))
    per_camera: dict[str, int] = {}
    kept: list[Pick] = []
    for pick in candidates:
        camera = pick.record.camera_id
        if len(kept) >= policy.max_events or per_camera.get(camera, 0) >= policy.per_camera:
            continue
        per_camera[camera] = per_camera.get(camera, 0) + 1
        kept.append(pick)
    kept.sort(key=lambda p: (p.record.started_at, p.record.event_id))
    return Selection(kept, considered=len(unique), capped=len(candidates) - len(kept))


def started(record: EventRecord) -> datetime:
    return datetime.fromisoformat(record.started_at.replace("Z", "+00:00"))
