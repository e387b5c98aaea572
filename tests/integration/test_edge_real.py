"""The gateway pass with the real OpenVINO model on real footage (Debian opencv-doc clips, scikit-image
pictures). Nothing is mocked here."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from contracts import CameraConfig, Candidate, GatewayConfig
from edge_agent.agent import EdgeAgent
from edge_agent.config_provider import StaticConfig
from edge_agent.outbox import Outbox
from edge_agent.settings import AgentSettings
from tests.footage import first_seconds, write_clip

pytestmark = pytest.mark.integration


def make_agent(tmp_path: Path, detector, config: GatewayConfig | None = None, outbox: bool = True) -> EdgeAgent:
    settings = AgentSettings(gateway_id="gw-test", data_dir=tmp_path / "edge")
    box = Outbox(settings.outbox_path) if outbox else None
    return EdgeAgent(settings, StaticConfig(config), detector, box)


def test_walking_people_in_vtest_become_a_candidate_with_snapshot_segment_and_outbox(
        tmp_path: Path, vtest: Path, gateway_detector) -> None:
    frames, fps = first_seconds(vtest, 12)
    clip = write_clip(tmp_path / "vtest12.avi", frames, fps)
    agent = make_agent(tmp_path, gateway_detector)
    report = agent.process_clip(str(clip), "plaza")
    assert report.error is None and report.frames_sampled >= 55
    assert report.candidates, "people walk through the whole clip"
    cand = report.candidates[0]
    assert cand.start_offset_s < 3.0
    assert cand.score >= 0.5 and cand.tracks and cand.boxes
    assert cand.model.model_id == "ssd-mobilenet-v2-coco"
    assert cv2.imdecode(np.frombuffer(cand.snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR) is not None
    segment = agent.settings.clips_dir / cand.clip.uri
    cap = cv2.VideoCapture(str(segment))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= 10  # pre-roll + the event
    cap.release()
    pending = agent.outbox.pending()
    assert [m.event_id for m in pending] == [c.event_id for c in report.candidates]
    assert pending[0].topic == "vigia/gw-test/cameras/plaza/candidates"
    assert Candidate.model_validate_json(pending[0].payload).event_id == cand.event_id
    assert len(pending[0].payload) < 128 * 1024  # IoT Core's message cap


def test_a_busy_minute_still_fits_one_mqtt_message(tmp_path: Path, vtest: Path, gateway_detector) -> None:
    agent = make_agent(tmp_path, gateway_detector)
    report = agent.process_clip(str(vtest), "plaza")  # 80 s, up to 8 people, dozens of tracks per event
    assert report.candidates
    for cand in report.candidates:
        assert 1 <= len(cand.tracks) <= 32
        assert len(cand.model_dump_json()) < 128 * 1024
    assert any("qualifying tracks in all" in r for c in report.candidates for r in c.reasons)


def test_tree_in_the_wind_sends_nothing_before_the_hand(tmp_path: Path, tree_clip: Path, gateway_detector) -> None:
    agent = make_agent(tmp_path, gateway_detector, outbox=False)
    report = agent.process_clip(str(tree_clip), "window")
    assert report.frames_sampled >= 60  # 68 coded frames over 29.6 s (time stamps, not frame/fps)
    early = [c for c in report.candidates if c.start_offset_s < 23.0]
    assert early == [], [(c.start_offset_s, c.score) for c in early]


def test_motion_gate_keeps_the_detector_quiet_on_a_static_scene(tmp_path: Path, vtest: Path, gateway_detector) -> None:
    frames, _fps = first_seconds(vtest, 0.2)
    rng = np.random.default_rng(7)
    still = frames[0]
    noisy = [np.clip(still.astype(np.int16) + rng.normal(0, 2.0, still.shape), 0, 255).astype(np.uint8)
             for _ in range(200)]  # 20 s of a static camera with sensor noise
    clip = write_clip(tmp_path / "static.avi", noisy, 10.0)
    agent = make_agent(tmp_path, gateway_detector, outbox=False)
    report = agent.process_clip(str(clip), "static")
    assert report.frames_sampled >= 95
    assert report.detector_frames / report.frames_sampled < 0.25, (report.detector_frames, report.frames_sampled)


def test_a_still_person_is_announced_once_not_every_clip(tmp_path: Path, pictures, gateway_detector) -> None:
    person = np.full((720, 1280, 3), 90, np.uint8)  # the astronaut standing in a larger, empty scene
    person[100:580, 500:820] = cv2.resize(pictures["astronaut"], (320, 480))
    clip = write_clip(tmp_path / "still.avi", [person] * 100, 10.0)  # 10 s, nothing moves
    agent = make_agent(tmp_path, gateway_detector, outbox=False)
    first = agent.process_clip(str(clip), "hall")
    second = agent.process_clip(str(clip), "hall")
    assert len(first.candidates) == 1
    assert second.candidates == []


def test_corrupt_clip_is_reported_and_the_next_clip_still_runs(tmp_path: Path, vtest: Path, gateway_detector) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "00-corrupt.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 100)
    (folder / "01-empty.mp4").write_bytes(b"")
    frames, fps = first_seconds(vtest, 6)
    write_clip(folder / "02-good.avi", frames, fps)
    agent = make_agent(tmp_path, gateway_detector, outbox=False)
    reports = agent.run_source(str(folder), "cam")
    assert [Path(r.clip).name for r in reports] == ["00-corrupt.avi", "01-empty.mp4", "02-good.avi"]
    assert "corrupt" in (reports[0].error or "") or "no frame" in (reports[0].error or "")
    assert "empty" in (reports[1].error or "")
    assert reports[2].error is None and reports[2].candidates


def test_stills_person_versus_no_person(tmp_path: Path, pictures, gateway_detector) -> None:
    agent = make_agent(tmp_path, gateway_detector, outbox=False)
    assert agent.process_image(pictures["astronaut"], "snap", "astronaut").candidates
    for name in ("chelsea", "coffee", "rocket"):
        assert agent.process_image(pictures[name], "snap", name).candidates == [], name


def _far_astronaut(pictures) -> np.ndarray:
    """The astronaut 160 px tall in the corner of a 1280x960 picture: too small for the full frame's 300 px input."""
    canvas = cv2.resize(pictures["coffee"], (1280, 960))
    canvas[40:200, 1080:1240] = cv2.resize(pictures["astronaut"], (160, 160))
    return canvas


def test_still_auto_tiling_finds_a_far_person_the_full_frame_misses(tmp_path: Path, pictures, gateway_detector) -> None:
    far = _far_astronaut(pictures)
    off = GatewayConfig(defaults=CameraConfig(tiling="off"))
    assert make_agent(tmp_path / "off", gateway_detector, off, outbox=False).process_image(far, "snap").candidates == []
    agent = make_agent(tmp_path / "auto", gateway_detector, outbox=False)  # the default: auto
    report = agent.process_image(far, "snap", "far")
    assert report.detector_calls == 5  # the full frame found nobody: 2x2 tiles too
    [cand] = report.candidates
    box = max(cand.boxes, key=lambda b: b.score)
    assert box.x1 > 1000 and box.y2 < 260, box  # the tiles' box lies on the astronaut
    close = agent.process_image(pictures["astronaut"], "snap", "near")
    assert close.candidates and close.detector_calls == 1  # found at full frame: no tiles
    empty = agent.process_image(cv2.resize(pictures["coffee"], (1280, 960)), "snap", "empty")
    assert empty.candidates == [] and empty.detector_calls == 5


def test_exclusion_mask_over_the_whole_scene_silences_the_camera(tmp_path: Path, vtest: Path, gateway_detector) -> None:
    frames, fps = first_seconds(vtest, 6)
    clip = write_clip(tmp_path / "v.avi", frames, fps)
    everything = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    config = GatewayConfig(cameras={"masked": CameraConfig.model_validate({"filters": {"masks": [everything]}})})
    agent = make_agent(tmp_path, gateway_detector, config, outbox=False)
    assert agent.process_clip(str(clip), "masked").candidates == []
    assert agent.process_clip(str(clip), "open").candidates  # the defaults for another camera


def test_edge_run_command_logs_one_json_line_per_decision(tmp_path: Path, vtest: Path, gateway_model_dir) -> None:
    import subprocess
    import sys

    frames, fps = first_seconds(vtest, 5)
    clip = write_clip(tmp_path / "v.avi", frames, fps)
    bad_config = tmp_path / "bad.json"
    bad_config.write_text(json.dumps({"defaults": {"threshold": 7}}))
    result = subprocess.run([sys.executable, "-m", "vigia.cli", "edge", "run", "--source", str(clip),
                             "--config", str(bad_config), "--data-dir", str(tmp_path / "d"),
                             "--model-dir", str(gateway_model_dir)], capture_output=True, text=True)
    assert result.returncode == 2 and "threshold" in result.stderr  # refused with the field's name
    result = subprocess.run([sys.executable, "-m", "vigia.cli", "edge", "run", "--source", str(clip),
                             "--data-dir", str(tmp_path / "d"), "--model-dir", str(gateway_model_dir)],
                            capture_output=True, text=True, check=True)
    decisions = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    candidates = [d for d in decisions if d.get("decision") == "candidate"]
    assert candidates and all(d["event_id"] and d["camera_id"] == "v" for d in candidates)
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["candidates"][0]["event_id"] == candidates[0]["event_id"]


def test_source_clip_mode_hands_over_the_camera_file_untouched(tmp_path: Path, vtest: Path, gateway_detector) -> None:
    import hashlib

    frames, fps = first_seconds(vtest, 8)
    clip = write_clip(tmp_path / "cam.avi", frames, fps)
    settings = AgentSettings(data_dir=tmp_path / "edge", clip_mode="source")
    agent = EdgeAgent(settings, StaticConfig(), gateway_detector)
    report = agent.process_clip(str(clip), "plaza")
    assert report.candidates
    ref = report.candidates[0].clip
    assert ref.offset_s == 0.0 and ref.fps == pytest.approx(fps)
    handed = settings.clips_dir / ref.uri
    original = hashlib.sha256(clip.read_bytes()).hexdigest()
    assert ref.sha256 == original == hashlib.sha256(handed.read_bytes()).hexdigest()


def test_long_activity_is_split_into_events_of_bounded_length(tmp_path: Path, vtest: Path, gateway_detector) -> None:
    frames, fps = first_seconds(vtest, 32)
    clip = write_clip(tmp_path / "long.avi", frames, fps)
    config = GatewayConfig(defaults=CameraConfig.model_validate({"tracking": {"max_event_s": 10}}))
    agent = make_agent(tmp_path, gateway_detector, config, outbox=False)
    events = agent.process_clip(str(clip), "plaza").candidates
    assert 3 <= len(events) <= 4, [(c.start_offset_s, c.end_offset_s) for c in events]
    for earlier, later in itertools.pairwise(events):
        assert later.start_offset_s >= earlier.end_offset_s  # consecutive, not overlapping
    assert all(c.end_offset_s - c.start_offset_s <= 10.5 for c in events)


def test_frames_in_flight_score_as_when_detected_one_at_a_time(vtest: Path, gateway_detector) -> None:
    """The shared detector hands OpenVINO each frame's input without a copy and keeps two requests per stream
    queued: every frame, tiled ones included, must still get exactly the detections a lone synchronous call
    gives (an input freed or reused while its request waits would change them)."""
    from edge_agent.detector_service import SharedDetector
    from models.detector import tile_regions

    frames, _ = first_seconds(vtest, 3)
    frames = frames[::3][:10]
    shared = SharedDetector(gateway_detector)
    assert shared.jobs == 2 * gateway_detector.optimal_requests
    client = shared.client()
    height, width = frames[0].shape[:2]
    tiles = [(0, 0, width, height), *tile_regions(width, height)]
    for i, frame in enumerate(frames):
        client.submit(frame.copy(), i, regions=tiles if i % 3 == 0 else None, floor=0.2)
    assert client.wait_all(timeout=60)
    results = dict(client.ready())
    assert sorted(results) == list(range(len(frames)))
    for i, frame in enumerate(frames):
        expected = gateway_detector.detect(frame, tiles if i % 3 == 0 else None, floor=0.2)
        assert expected, "people walk in every frame of vtest's first seconds"
        got = results[i]
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert a.as_xyxy() == pytest.approx(b.as_xyxy(), abs=1e-3) and a.score == pytest.approx(b.score, abs=1e-5)
