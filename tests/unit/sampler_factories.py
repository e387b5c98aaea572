"""Events for the sampler tests, stored the way the pipeline stores them: a real Candidate and Verdict make
the EventRecord (EventRecord.build), its snapshot and clip go to the media store under the pipeline's keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud.events.record import EventRecord
from cloud.ports import EventStore, ObjectStore
from cloud.storage.keys import clip_key, media_tags, snapshot_key
from contracts import ModelRef, Verdict
from tests.unit.cloud_factories import make_candidate, write_avi

DAY = datetime(2026, 11, 28, tzinfo=UTC)
VERIFIER_MODELS = [ModelRef(model_id="ssd-mobilenet-v2-coco", version="2.1.0"),
                   ModelRef(model_id="ssdlite-person", version="1.0.3")]


def store_event(
    events: EventStore,
    objects: ObjectStore,
    workdir: Path,
    *,
    camera_id: str = "cam-front",
    started_at: datetime = DAY + timedelta(hours=10),
    edge_score: float = 0.8,
    edge_threshold: float = 0.5,
    decision: str = "uncertain",
    verifier_score: float = 0.4,
    with_clip: bool = True,
) -> EventRecord:
    candidate = make_candidate(camera_id=camera_id, score=edge_score, started_at=started_at).model_copy(
        update={"threshold": edge_threshold})
    verdict = Verdict(
        event_id=candidate.event_id, camera_id=camera_id, gateway_id=candidate.gateway_id, decision=decision,
        score=verifier_score, reasons=[f"verifier {decision} at {verifier_score:.2f}"], boxes=candidate.boxes,
        models=VERIFIER_MODELS, frames_examined=8, verified_at=started_at + timedelta(seconds=30),
        processing_ms=1800.0,
    )
    tags = media_tags(camera_id, decision, VERIFIER_MODELS[0].version)
    snap_k = snapshot_key(camera_id, candidate.event_id, started_at)
    objects.put_bytes(snap_k, candidate.snapshot_jpeg, "image/jpeg", tags)
    clip_k = None
    if with_clip:
        clip = write_avi(workdir / f"{candidate.event_id}.avi")
        clip_k = clip_key(camera_id, candidate.event_id, started_at, "avi")
        objects.put_file(clip_k, clip, "video/x-msvideo", tags)
    record = EventRecord.build(candidate, verdict, clip_key=clip_k, snapshot_key=snap_k,
                               now=started_at + timedelta(seconds=31), ttl_days=90)
    assert events.put_if_absent(record)
    return record
