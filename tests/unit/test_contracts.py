from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from contracts import (
    CameraConfig,
    Candidate,
    FilterSettings,
    GatewayConfig,
    ModelRef,
    event_id_time,
    new_event_id,
    validate_event_id,
)


def _jpeg() -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((8, 8, 3), 127, np.uint8))
    assert ok
    return buf.tobytes()


def _candidate(**overrides) -> Candidate:
    now = datetime.now(UTC)
    fields = dict(event_id=new_event_id(), gateway_id="gw-1", camera_id="cam-1", started_at=now, ended_at=now,
                  start_offset_s=0, end_offset_s=1, frame_width=640, frame_height=480, best_frame_offset_s=0.5,
                  snapshot_jpeg=_jpeg(), boxes=[], tracks=[], score=0.8, threshold=0.5,
                  model=ModelRef(model_id="m", version="1"), reasons=["test"])
    fields.update(overrides)
    return Candidate(**fields)


def test_event_ids_are_unique_and_sort_by_time() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # monotonic within a millisecond too
    earlier = new_event_id(now=time.time() - 3600)
    assert earlier < ids[0]
    assert abs(event_id_time(ids[0]).timestamp() - time.time()) < 5


@pytest.mark.parametrize(
    "bad", ["", "../../etc/passwd", "01M8G4W4TZSFZYB5DWKH5V1NV", "8" * 26, "01m8g4w4tzsfzyb5dwkh5v1nvn"]
)
def test_malformed_event_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_event_id(bad)


def test_candidate_roundtrips_through_json_with_base64_snapshot() -> None:
    cand = _candidate()
    wire = cand.model_dump_json()
    assert isinstance(json.loads(wire)["snapshot_jpeg"], str)
    again = Candidate.model_validate_json(wire)
    assert again.snapshot_jpeg == cand.snapshot_jpeg
    assert again == cand


def test_candidate_refuses_unknown_fields_wrong_version_and_non_jpeg() -> None:
    data = json.loads(_candidate().model_dump_json())
    with pytest.raises(ValidationError, match="extra"):
        Candidate.model_validate(data | {"surprise": 1})
    with pytest.raises(ValidationError, match="schema_version"):
        Candidate.model_validate(data | {"schema_version": 2})
    with pytest.raises(ValidationError, match="JPEG"):
        _candidate(snapshot_jpeg=b"GIF89a....")
    with pytest.raises(ValidationError, match="camera_id"):
        _candidate(camera_id="../cam")


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        CameraConfig.model_validate({"threshold": 1.5})
    assert err.value.errors()[0]["loc"] == ("threshold",)
    with pytest.raises(ValidationError) as err:
        CameraConfig.model_validate({"filters": {"zones": [[[0, 0], [2, 0], [1, 1]]]}})
    assert err.value.errors()[0]["loc"][:2] == ("filters", "zones")
    with pytest.raises(ValidationError, match="detect_threshold"):
        CameraConfig(detect_threshold=0.6, threshold=0.5)
    with pytest.raises(ValidationError, match="min_area"):
        FilterSettings(min_area=0.5, max_area=0.1)
    with pytest.raises(ValidationError, match="sample_fps"):
        CameraConfig.model_validate({"sample_fps": "fast"})
    with pytest.raises(ValidationError, match="extra"):
        CameraConfig.model_validate({"treshold": 0.5})


def test_gateway_config_falls_back_to_defaults_for_unlisted_cameras() -> None:
    config = GatewayConfig.model_validate({"defaults": {"threshold": 0.7}, "cameras": {"door": {"threshold": 0.4}}})
    assert config.for_camera("door").threshold == 0.4
    assert config.for_camera("yard").threshold == 0.7
    with pytest.raises(ValidationError, match="camera id"):
        GatewayConfig.model_validate({"cameras": {"bad id/..": {}}})
