"""What the API returns for an event: a short summary for lists, the whole story for one event.

Both stages' boxes are returned in their own pixels with the frame size they belong to, so a page can
scale them onto the snapshot: the gateway's boxes are on the gateway's best frame (the snapshot's frame);
the verifier's are on the verifier's own best frame, which may be another moment of the clip.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cloud.events.record import EventRecord
from contracts import redact_uri

log = logging.getLogger(__name__)

_SUMMARY_FIELDS = (
    "event_id", "camera_id", "gateway_id", "site_id", "started_at", "ended_at", "decision", "score",
    "edge_score", "edge_threshold", "edge_model", "verifier_models", "config_version", "created_at",
    "notified", "notified_at",
)


def _box(box: dict[str, Any]) -> dict[str, Any]:
    return {k: box.get(k) for k in ("x1", "y1", "x2", "y2", "score", "track_id")}


def event_summary(record: EventRecord) -> dict[str, Any]:
    out = {name: getattr(record, name) for name in _SUMMARY_FIELDS}
    # label / labeled_at arrive with the feedback package; older records have neither
    out["label"] = getattr(record, "label", None)
    out["labeled_at"] = getattr(record, "labeled_at", None)
    base = f"/api/events/{record.event_id}"
    out["snapshot_url"] = f"{base}/snapshot" if record.snapshot_key else None
    out["clip_url"] = f"{base}/clip" if record.clip_key else None
    return out


def _feedback_history(record: EventRecord) -> list[dict[str, Any]]:
    raw = getattr(record, "feedback_json", None)
    if not raw:
        return []
    try:
        history = json.loads(raw)
    except ValueError:
        log.warning("feedback history unreadable", extra={"event_id": record.event_id})
        return []
    return history if isinstance(history, list) else []


def _gateway_view(record: EventRecord) -> dict[str, Any] | None:
    facts = record.candidate_facts() if record.candidate_json else None
    if not facts:
        return None
    clip = facts.get("clip") or {}
    return {
        "frame_width": facts.get("frame_width"),
        "frame_height": facts.get("frame_height"),
        "best_frame_offset_s": facts.get("best_frame_offset_s"),
        "start_offset_s": facts.get("start_offset_s"),
        "end_offset_s": facts.get("end_offset_s"),
        "clip_offset_s": clip.get("offset_s"),
        "score": facts.get("score"),
        "threshold": facts.get("threshold"),
        "boxes": [_box(b) for b in facts.get("boxes", [])],
        "tracks": facts.get("tracks", []),
        "reasons": facts.get("reasons", []),
        "source": redact_uri(str(facts.get("source", ""))),
    }


def event_detail(record: EventRecord, verifier_frame: tuple[int, int] | None = None) -> dict[str, Any]:
    """The event with its verdict, the gateway's view, the feedback history and media links.

    `verifier_frame` (width, height) is the size of the frames the verifier examined when known (read from
    the clip); otherwise the gateway's frame size is assumed (the segment is written at that size)."""
    verdict = record.verdict()
    gateway = _gateway_view(record)
    if verifier_frame is None and gateway is not None:
        frame, frame_source = (gateway["frame_width"], gateway["frame_height"]), "assumed: the gateway's frame"
    elif verifier_frame is not None:
        frame, frame_source = verifier_frame, "clip"
    else:
        frame, frame_source = None, "unknown"
    out = event_summary(record)
    base = f"/api/events/{record.event_id}"
    out.update({
        "verdict": {
            "decision": verdict.decision,
            "score": verdict.score,
            "reasons": verdict.reasons,
            "boxes": [_box(b.model_dump()) for b in verdict.boxes],
            "frame_width": frame[0] if frame else None,
            "frame_height": frame[1] if frame else None,
            "frame_size_from": frame_source,
            "frames_examined": verdict.frames_examined,
            "models": [f"{m.model_id}@{m.version}" for m in verdict.models],
            "verified_at": verdict.verified_at.isoformat(),
            "processing_ms": verdict.processing_ms,
        },
        "gateway": gateway,
        "feedback": _feedback_history(record),
        "playable_clip_url": f"{base}/clip.mp4" if record.clip_key else None,
        "download_clip_url": f"{base}/clip?download=1" if record.clip_key else None,
    })
    return out
