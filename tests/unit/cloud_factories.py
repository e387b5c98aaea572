"""Builders shared by the cloud tests: real contracts.Candidate objects, tiny JPEGs and MJPG clips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from contracts import Box, Candidate, ClipRef, ModelRef, TrackStats, Verdict, new_event_id


def tiny_jpeg(shade: int = 90) -> bytes:
    image = np.full((24, 32, 3), shade, np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def write_avi(path: Path, frames: int = 6, fps: float = 5.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 24))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((24, 32, 3), 20 * i % 255, np.uint8))
    writer.release()
    return path


def make_candidate(
    *,
    camera_id: str = "cam-front",
    score: float = 0.8,
    clip: ClipRef | None = None,
    site_id: str | None = "site-1",
    started_at: datetime | None = None,
    event_id: str | None = None,
) -> Candidate:
    started = started_at or datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    return Candidate(
        event_id=event_id or new_event_id(),
        gateway_id="gw-1",
        camera_id=camera_id,
        site_id=site_id,
        source="rtsp://cam/1",
        started_at=started,
        ended_at=started + timedelta(seconds=4),
        start_offset_s=1.0,
        end_offset_s=5.0,
        frame_width=32,
        frame_height=24,
        best_frame_offset_s=2.0,
        snapshot_jpeg=tiny_jpeg(),
        boxes=[Box(x1=2, y1=2, x2=10, y2=20, score=score, track_id=1)],
        tracks=[TrackStats(track_id=1, hits=5, frames_seen=6, first_ts=1.0, last_ts=5.0, score_track=score,
                           score_max=score, score_mean=score, displacement=1.2, mean_height_px=18)],
        score=score,
        threshold=0.5,
        model=ModelRef(model_id="ssd-mobilenet", version="1.2.0", precision="INT8"),
        config_version=7,
        reasons=["track score over threshold"],
        clip=clip,
    )


def decide_by_candidate_score(candidate: Candidate, clip_path: Path | None) -> Verdict:
    """A deterministic stand-in for the real verifier (which is tested elsewhere): the gateway's own
    score decides (>= 0.7 confirmed, <= 0.3 rejected, else uncertain); counts the clip's frames."""
    frames = 0
    if clip_path is not None:
        from cloud.clips.frames import read_frames

        frames = sum(1 for _ in read_frames(clip_path))
    decision = "confirmed" if candidate.score >= 0.7 else "rejected" if candidate.score <= 0.3 else "uncertain"
    return Verdict(
        event_id=candidate.event_id, camera_id=candidate.camera_id, gateway_id=candidate.gateway_id,
        decision=decision, score=candidate.score, reasons=[f"candidate score {candidate.score:.2f}"],
        boxes=candidate.boxes, models=[ModelRef(model_id="stand-in", version="0.0.1")],
        frames_examined=frames, verified_at=datetime.now(UTC), processing_ms=1.0,
    )


def stand_in_verify_factory():
    """VIGIA_VERIFIER-style factory for the stand-in, for tests that go through configuration."""
    return decide_by_candidate_score
