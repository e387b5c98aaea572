"""Labeled units from the event store: each event a customer or reviewer labeled person / not-person.

What the store cannot show: events the gateway never sent (track score below its threshold) are not in
it. Recall measured here is recall among the people the gateway sent, and only thresholds at or above the
highest one those events were sent under can be judged (`evaluable_floor`). 'unsure' labels are left out.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from cloud.tuning.threshold import LabeledScore

log = logging.getLogger(__name__)

MAX_LABELED = 20_000  # per camera and label: far more than any review team labels; reported when reached
TUNED_LABELS = {"person": True, "not-person": False}


def labeled_scores(store: Any, camera_id: str, since: datetime | None = None) -> list[LabeledScore]:
    """(edge_score, person?) of the camera's labeled events, through `EventStore.query(label=...)`."""
    out: list[LabeledScore] = []
    for label, person in TUNED_LABELS.items():
        records = store.query(camera_id=camera_id, label=label, since=since, limit=MAX_LABELED)
        if len(records) >= MAX_LABELED:
            log.warning("labeled events capped; the newest are used", extra={
                "camera_id": camera_id, "label": label, "limit": MAX_LABELED})
        out += [LabeledScore(score=r.edge_score, person=person, group=r.event_id,
                             alerted=r.decision == "confirmed", sent_threshold=r.edge_threshold)
                for r in records]
    return out


def labeled_cameras(store: Any, since: datetime | None = None) -> list[str]:
    """Every camera with at least one person / not-person label."""
    cameras: set[str] = set()
    for label in TUNED_LABELS:
        cameras |= {r.camera_id for r in store.query(label=label, since=since, limit=MAX_LABELED)}
    return sorted(cameras)


def current_threshold(store: Any, camera_id: str) -> tuple[float, str | None]:
    """The threshold the camera's newest event was sent under, and that event's gateway (thing name)."""
    newest = store.query(camera_id=camera_id, limit=1)
    if not newest:
        raise LookupError(f"camera {camera_id!r} has no events in the store")
    return newest[0].edge_threshold, newest[0].gateway_id
