"""Builders for the feedback tests: events stored by the real pipeline (stand-in verifier) with real pictures
as snapshots, so the false-positive memory learns from real pixels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from cloud.runtime.inprocess import InProcessCloud
from contracts import Box
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
POSTER_BOX = (100.0, 40.0, 260.0, 290.0)  # where the picture's subject stands, in 400x300 frame pixels


def scene(picture: np.ndarray) -> np.ndarray:
    return cv2.resize(picture, (400, 300))


def store_event(cloud: InProcessCloud, picture: np.ndarray, *, score: float, camera: str = "porch",
                minutes: int = 0, box: tuple[float, float, float, float] = POSTER_BOX) -> str:
    """Send one candidate whose snapshot is `picture` through the pipeline; its event id."""
    frame = scene(picture)
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    candidate = make_candidate(score=score, camera_id=camera, started_at=T0 + timedelta(minutes=minutes))
    candidate = candidate.model_copy(update={
        "snapshot_jpeg": jpeg.tobytes(), "frame_width": 400, "frame_height": 300,
        "boxes": [Box(x1=box[0], y1=box[1], x2=box[2], y2=box[3], score=score, track_id=1)]})
    verdict = cloud.submit(candidate)
    assert verdict is not None
    return candidate.event_id


def stand_in_cloud(settings) -> InProcessCloud:
    return InProcessCloud(settings, decide_by_candidate_score)
