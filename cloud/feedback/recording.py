"""`record_feedback`: validate, store on the event (idempotent), and learn from a false alarm."""

from __future__ import annotations

import logging
from collections.abc import Callable

from cloud.events.record import EventRecord
from cloud.feedback.model import FeedbackEntry, UnknownEvent, parse_label
from cloud.ports import EventStore
from contracts import validate_event_id

log = logging.getLogger(__name__)


class LearningFailed(RuntimeError):
    """The label is stored but the false-positive memory could not be updated; giving the same feedback again
    retries (learning is idempotent)."""


def record_feedback(
    store: EventStore,
    event_id: str,
    label: str,
    *,
    by: str,
    note: str | None = None,
    source: str = "cli",
    on_not_person: Callable[[EventRecord], object] | None = None,
) -> EventRecord:
    """Store `label` (person | not-person | unsure) on the event and return the updated record.

    Raises ValueError naming the allowed labels (or the bad field), UnknownEvent for an id the store does not
    hold, and LearningFailed when `on_not_person` (run for `not-person` on a confirmed event) fails."""
    parsed = parse_label(label)
    try:
        event_id = validate_event_id(event_id)
    except ValueError as exc:
        raise UnknownEvent(event_id) from exc
    entry = FeedbackEntry(label=parsed, by=by, note=note or None, source=source)  # type: ignore[arg-type]
    before = store.get(event_id)
    if before is None:
        raise UnknownEvent(event_id)
    record = store.set_feedback(event_id, entry)
    changed = record.feedback_json != before.feedback_json
    log.info("feedback recorded" if changed else "feedback already recorded", extra={
        "event_id": event_id, "camera_id": record.camera_id, "label": parsed, "by": by, "source": source,
        "decision": record.decision, "changed": changed})
    _count(record, parsed, source, changed)
    if parsed == "not-person" and record.decision == "confirmed" and on_not_person is not None:
        try:
            on_not_person(record)
        except Exception as exc:
            log.error("fp memory not updated; the label is stored", extra={
                "event_id": event_id, "camera_id": record.camera_id, "error": str(exc)[:500]})
            raise LearningFailed(f"label stored, but the camera's false-positive memory was not updated: {exc} "
                                 "(give the same feedback again to retry)") from exc
    return record


def _count(record: EventRecord, label: str, source: str, changed: bool) -> None:
    """The `feedback` metric (EMF); metrics must never fail a label."""
    if not changed:
        return
    try:
        from cloud.metrics import count

        count("feedback", {"camera_id": record.camera_id, "label": label, "source": source})
    except Exception:  # best effort by design
        log.debug("feedback metric not written", exc_info=True)
