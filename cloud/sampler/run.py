"""One sampling run: read the window's events, pick by strategy, copy their media, write the manifests.

The run id is the window and the policy's fingerprint, so a retried run (a Lambda retry, the same command
twice) rewrites the same review set with the same events instead of adding another.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloud.events.record import EventRecord, iso_utc
from cloud.ports import EventStore, ObjectStore
from cloud.sampler.manifest import SCHEMA_VERSION, entry_for, write_manifests
from cloud.sampler.policy import SamplingPolicy, Window
from cloud.sampler.review_store import MissingObject, ReviewStore
from cloud.sampler.selection import Pick, select, started
from cloud.storage.keys import tag_value

log = logging.getLogger(__name__)

LABELS = ("person", "not-person", "unsure")


@dataclass
class SampleResult:
    run_id: str | None
    since: str
    until: str
    considered: int
    picked: int
    capped: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    missing_media: int = 0
    review_root: str = ""
    manifest_key: str | None = None
    csv_key: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _labeled_at(record: EventRecord) -> datetime | None:
    value = getattr(record, "labeled_at", None)
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def gather(events: EventStore, window: Window, policy: SamplingPolicy) -> tuple[list[EventRecord], set[str]]:
    """The window's events (score-band index, one UTC day at a time) and the ids customers flagged in it."""
    found: dict[str, EventRecord] = {}
    low = max(0.0, policy.confirm_threshold - policy.band)
    high = min(1.0, policy.confirm_threshold + policy.band)
    for day in window.days():
        whole_day = events.by_score_band(day, 0.0, 1.0, limit=policy.scan_limit)
        if len(whole_day) >= policy.scan_limit:
            log.warning("day has more events than scan_limit; random and edge picks see only part of it",
                        extra={"day": day, "scan_limit": policy.scan_limit})
        # The near-threshold band on its own: complete even on a day larger than scan_limit.
        near = events.by_score_band(day, low, high, limit=policy.scan_limit)
        for record in [*near, *whole_day]:
            if window.holds(started(record)):
                found.setdefault(record.event_id, record)
    flagged = _flagged(events, window, policy, found)  # adds flagged events that started before the window
    return list(found.values()), flagged


def _flagged(events: EventStore, window: Window, policy: SamplingPolicy,
             found: dict[str, EventRecord]) -> set[str]:
    """Events a customer labeled during the window (wherever the event itself falls) or that started in it."""
    query = getattr(events, "query", None)
    if query is None:
        log.warning("event store has no label query yet; flagged events are only those seen in the window")
        return {r.event_id for r in found.values() if getattr(r, "label", None)}
    flagged: set[str] = set()
    for label in LABELS:
        for record in query(label=label, limit=policy.scan_limit):
            labeled_at = _labeled_at(record)
            if window.holds(started(record)) or (labeled_at is not None and window.holds(labeled_at)):
                flagged.add(record.event_id)
                found.setdefault(record.event_id, record)
    return flagged


def run_id_for(window: Window, policy: SamplingPolicy) -> str:
    return f"{window.label()}_{policy.digest()}"


def copy_media(pick: Pick, run_id: str, objects: ObjectStore, review: ReviewStore
               ) -> tuple[dict[str, str | None], list[str]]:
    """Copy the event's clip and snapshot under `<run id>/<camera>/<event id>/`; a missing one is noted."""
    record = pick.record
    keys: dict[str, str | None] = {"clip": None, "snapshot": None}
    missing: list[str] = []
    tags = {"review_set": run_id, "camera": tag_value(record.camera_id), "verdict": tag_value(record.decision)}
    for kind, source_key in (("clip", record.clip_key), ("snapshot", record.snapshot_key)):
        if not source_key:
            continue
        ext = source_key.rsplit(".", 1)[-1] if "." in source_key.rsplit("/", 1)[-1] else "bin"
        dest = f"{run_id}/{record.camera_id}/{record.event_id}/{kind}.{ext}"
        try:
            review.copy_from(objects, source_key, dest, tags)
        except MissingObject:
            log.warning("event media missing from the media store; listed without it",
                        extra={"event_id": record.event_id, "kind": kind, "key": source_key})
            missing.append(kind)
            continue
        keys[kind] = dest
    return keys, missing


def run_sampler(
    events: EventStore,
    objects: ObjectStore,
    review: ReviewStore,
    window: Window,
    policy: SamplingPolicy | None = None,
    now: datetime | None = None,
) -> SampleResult:
    """Pick, copy and write one review set. No set is written when nothing is picked."""
    policy = policy or SamplingPolicy()
    now = now or datetime.now(UTC)
    since, until = iso_utc(window.since), iso_utc(window.until)
    records, flagged = gather(events, window, policy)
    selection = select(records, policy, flagged_ids=flagged)
    result = SampleResult(run_id=None, since=since, until=until, considered=selection.considered,
                          picked=len(selection.picks), capped=selection.capped, review_root=review.describe())
    if not records:
        result.message = f"no events between {since} and {until}"
        log.info("sampler: empty window", extra={"since": since, "until": until})
        return result
    if not selection.picks:
        result.message = (f"{selection.considered} event(s) between {since} and {until}; "
                          "none matched a sampling strategy")
        log.info("sampler: nothing picked", extra={"since": since, "until": until,
                                                   "considered": selection.considered})
        return result

    run_id = run_id_for(window, policy)
    entries = []
    for pick in selection.picks:
        keys, missing = copy_media(pick, run_id, objects, review)
        result.missing_media += len(missing)
        entries.append(entry_for(pick, policy.confirm_threshold, keys, missing))
    by_reason = dict(sorted(Counter(r for p in selection.picks for r in p.reasons).items()))
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "window": {"since": since, "until": until},
        "generated_at": iso_utc(now),
        "policy": policy.model_dump(),
        "counts": {"considered": selection.considered, "picked": len(entries), "capped": selection.capped,
                   "by_reason": by_reason},
        "events": entries,
    }
    result.manifest_key, result.csv_key = write_manifests(review, run_id, manifest)
    result.run_id, result.by_reason = run_id, by_reason
    result.message = (f"review set {run_id}: {len(entries)} of {selection.considered} event(s) between {since} "
                      f"and {until} -> {review.describe().rstrip('/')}/{run_id}/")
    log.info("sampler: review set written", extra={
        "run_id": run_id, "picked": len(entries), "considered": selection.considered,
        "capped": selection.capped, "by_reason": by_reason, "missing_media": result.missing_media})
    return result
