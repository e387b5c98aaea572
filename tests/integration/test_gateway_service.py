"""The gateway as a service, with the real model on real footage: an object that stays in view is announced
once, many cameras share one detector and decide as if alone, a SIGKILL and a rerun announce no clip twice,
a full disk holds candidates until space returns, a broker that is down at start is an outbox that fills,
a live RTSP camera that drops is reconnected, and configuration errors end the agent with one line."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from contracts import CameraConfig, GatewayConfig, TrackingSettings
from contracts.ids import event_id_time
from edge_agent.agent import EdgeAgent
from edge_agent.config_provider import StaticConfig
from edge_agent.ledger import ClipLedger
from edge_agent.outbox import Outbox
from edge_agent.settings import AgentSettings
from edge_agent.supervisor import Supervisor
from tests.footage import first_seconds, write_clip
from tests.rtsp_server import RtspServer, free_port
from tests.waiting import wait_for as _wait

pytestmark = pytest.mark.integration


def make_agent(data_dir: Path, detector, config: GatewayConfig | None = None, ledger: bool = False,
               gateway_id: str = "gw-test") -> EdgeAgent:
    settings = AgentSettings(gateway_id=gateway_id, data_dir=data_dir)
    return EdgeAgent(settings, StaticConfig(config), detector, Outbox(settings.outbox_path),
                     ledger=ClipLedger(settings.ledger_path) if ledger else None)


def scene_with_people(astronaut: np.ndarray, seconds: float, fps: float, newcomer_from_s: float | None) -> list:
    """A still person on the right for the whole clip; from `newcomer_from_s`, a second one walks in on the left."""
    base = np.full((360, 640, 3), 90, np.uint8)
    person = cv2.resize(astronaut, (160, 240))
    base[60:300, 440:600] = person
    rng = np.random.default_rng(3)
    frames = []
    for i in range(int(seconds * fps)):
        frame = base.copy()
        t = i / fps
        if newcomer_from_s is not None and newcomer_from_s <= t < newcomer_from_s + 8:
            x = int(10 + (t - newcomer_from_s) * 25)  # 25 px/s to the right, 8 s in view
            frame[60:300, x:x + 160] = person
        noise = rng.normal(0, 1.5, frame.shape)
        frames.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    return frames


def test_a_person_standing_for_minutes_is_announced_once_and_a_newcomer_still_alerts(
        tmp_path: Path, pictures, gateway_detector) -> None:
    # 150 s at 5 fps: longer than max_event_s (60 s), and keyframes every 5 s, longer than event_gap_s (3 s):
    # both used to re-announce the same standing person (one candidate a minute, or one per keyframe).
    fps = 5.0
    clip = write_clip(tmp_path / "hall.avi", scene_with_people(pictures["astronaut"], 150, fps, 120.0), fps)
    cfg = CameraConfig(sample_fps=fps, motion={"keyframe_interval_s": 5.0},
                       tracking=TrackingSettings(event_gap_s=3.0, max_event_s=60.0))
    assert cfg.motion.keyframe_interval_s > cfg.tracking.event_gap_s
    agent = make_agent(tmp_path / "edge", gateway_detector, GatewayConfig(defaults=cfg))
    report = agent.process_clip(str(clip), "hall")
    starts = [round(c.start_offset_s, 1) for c in report.candidates]
    assert len(report.candidates) == 2, starts
    assert starts[0] < 5.0  # the standing person, once
    assert 119.0 <= starts[1] <= 124.0  # the newcomer, when it walks in
    assert agent.outbox.count_pending() == 2


def test_cameras_share_one_detector_and_each_decides_as_if_alone(tmp_path: Path, vtest: Path, pictures,
                                                                 gateway_detector) -> None:
    frames, fps = first_seconds(vtest, 10)
    plaza = write_clip(tmp_path / "plaza.avi", frames, fps)
    hall = write_clip(tmp_path / "hall.avi", scene_with_people(pictures["astronaut"], 20, 5.0, 8.0), 5.0)
    alone = {}
    for camera, clip in (("plaza", plaza), ("hall", hall)):
        agent = make_agent(tmp_path / f"alone-{camera}", gateway_detector)
        alone[camera] = [(c.event_id, c.start_offset_s, c.end_offset_s, c.score)
                         for c in agent.process_clip(str(clip), camera).candidates]
    together = make_agent(tmp_path / "together", gateway_detector)
    supervisor = Supervisor(together, {"plaza": str(plaza), "hall": str(hall)}).start()
    assert supervisor.wait(timeout=300)
    for camera in ("plaza", "hall"):
        [report] = supervisor.reports[camera]
        got = [(c.event_id, c.start_offset_s, c.end_offset_s, c.score) for c in report.candidates]
        assert got == alone[camera], camera  # same frames, same detections, same event ids
        assert alone[camera], camera
    status = together.camera_status()
    assert {status["plaza"].state, status["hall"].state} == {"finished"}
    assert status["plaza"].candidates == len(alone["plaza"])


def _vigia(*args: str, env: dict | None = None) -> list[str]:
    return [sys.executable, "-m", "vigia.cli", *args]


def _outbox_rows(data_dir: Path) -> list[tuple[str, str]]:
    path = data_dir / "outbox.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT event_id, topic FROM outbox ORDER BY seq").fetchall()
        except sqlite3.OperationalError:
            return []


@pytest.fixture
def clip_folder(tmp_path: Path, vtest: Path) -> Path:
    frames, fps = first_seconds(vtest, 24)
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(3):  # three 8-second "one-minute clips", people in each
        write_clip(folder / f"clip-{i}.avi", frames[int(i * 8 * fps):int((i + 1) * 8 * fps)], fps)
    return folder


def test_sigkill_and_restart_over_a_folder_announces_no_clip_twice(tmp_path: Path, clip_folder: Path,
                                                                  gateway_model_dir: Path) -> None:
    common = ["--source", str(clip_folder), "--camera", "door", "--model-dir", str(gateway_model_dir)]
    clean = tmp_path / "clean"
    subprocess.run(_vigia("edge", "run", *common, "--data-dir", str(clean)), check=True, capture_output=True,
                   timeout=300)
    expected = [event_id for event_id, _ in _outbox_rows(clean)]
    assert len(expected) >= 3  # at least one event a clip

    crashed = tmp_path / "crashed"
    proc = subprocess.Popen(_vigia("edge", "run", *common, "--data-dir", str(crashed)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(_outbox_rows(crashed)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the first run ended before it could be killed mid-folder"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = len(_outbox_rows(crashed))
    assert 2 <= before < len(expected)
    rerun = subprocess.run(_vigia("edge", "run", *common, "--data-dir", str(crashed)), capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    got = [event_id for event_id, _ in _outbox_rows(crashed)]
    assert got == expected  # nothing twice, nothing lost, in the same order
    skipped = [json.loads(line) for line in rerun.stdout.splitlines() if line.startswith("{")]
    assert any(r["skipped"] == "already processed" for r in skipped)  # the clip finished before the kill


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {result.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, "4m")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    ballast = disk / "ballast"
    with ballast.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return ballast


def test_a_full_disk_holds_candidates_with_one_error_line_and_accepts_them_later(
        tmp_path: Path, small_disk: Path, vtest: Path, gateway_detector, caplog: pytest.LogCaptureFixture) -> None:
    frames, fps = first_seconds(vtest, 8)
    clip = write_clip(tmp_path / "plaza.avi", frames, fps)  # outside the small disk
    agent = make_agent(small_disk / "edge", gateway_detector)
    ballast = _fill(small_disk)
    with caplog.at_level(logging.INFO):
        report = agent.process_clip(str(clip), "plaza")  # must not raise
    assert report.error is None and report.candidate_count >= 1
    assert agent.held_candidates == report.candidate_count
    outbox_errors = [r for r in caplog.records if r.getMessage().startswith("outbox cannot be written")]
    segment_errors = [r for r in caplog.records if r.getMessage().startswith("clip segment cannot be written")]
    assert len(outbox_errors) == 1 and "disk full" in outbox_errors[0].__dict__["error"]
    assert len(segment_errors) == 1
    assert all(c.clip is None and any("no clip" in r for r in c.reasons) for c in report.candidates)

    ballast.unlink()
    agent.retry_spill()
    assert agent.held_candidates == 0
    assert [m.event_id for m in agent.outbox.pending()] == [c.event_id for c in report.candidates]


def test_broker_down_at_start_is_an_outbox_that_fills_not_a_crash(tmp_path: Path, vtest: Path,
                                                                 gateway_model_dir: Path) -> None:
    frames, fps = first_seconds(vtest, 8)
    clip = write_clip(tmp_path / "plaza.avi", frames, fps)
    data = tmp_path / "edge"
    result = subprocess.run(_vigia("edge", "run", "--source", str(clip), "--model-dir", str(gateway_model_dir),
                                   "--data-dir", str(data), "--thing", "gw1", "--transport", "paho",
                                   "--mqtt-host", "127.0.0.1", "--mqtt-port", str(free_port()),
                                   "--drain-timeout", "1"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "broker unreachable" in result.stderr
    rows = _outbox_rows(data)
    assert rows and all(topic.startswith("vigia/gw1/cameras/plaza/") for _, topic in rows)
    assert Outbox(data / "outbox.sqlite").count_pending() == len(rows)


@pytest.mark.parametrize(("args", "message"), [
    (["--source", ""], "--source is empty"),
    (["--source", "{clip}", "--camera", "../x"], "camera id '../x' is not valid"),
    (["--config", "{bad_config}"], "cameras.cam1.threshold"),
    (["--source", "{empty_dir}"], "no video"),
])
def test_configuration_errors_end_the_agent_with_status_2_and_one_line(tmp_path: Path, args: list[str],
                                                                      message: str, vtest: Path,
                                                                      gateway_model_dir: Path) -> None:
    bad_config = tmp_path / "gateway.json"
    bad_config.write_text(json.dumps({"sources": {"cam1": str(vtest)}, "cameras": {"cam1": {"threshold": 7}}}))
    (tmp_path / "empty").mkdir()
    values = {"clip": str(vtest), "bad_config": str(bad_config), "empty_dir": str(tmp_path / "empty")}
    data = tmp_path / "edge"
    result = subprocess.run(_vigia("edge", "run", *[a.format(**values) for a in args], "--data-dir", str(data),
                                   "--model-dir", str(gateway_model_dir)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists() and not data.exists()  # nothing written, nowhere


def test_models_not_prepared_is_a_clear_error_not_a_download(tmp_path: Path, vtest: Path) -> None:
    env = {**os.environ, "VIGIA_MODELS_DIR": str(tmp_path / "no-models")}
    result = subprocess.run(_vigia("edge", "run", "--source", str(vtest), "--data-dir", str(tmp_path / "edge")),
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert "vigia models prepare" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "no-models").exists()  # nothing was downloaded or prepared


def test_a_live_camera_that_drops_is_reconnected_and_keeps_producing(tmp_path: Path, rtsp_footage: Path,
                                                                    gateway_detector) -> None:
    server = RtspServer(rtsp_footage, user="admin", password="pa$$&word")
    server.start()
    # Events close after 8 s of activity (people walk through the whole looped footage).
    cfg = CameraConfig(sample_fps=5.0, tracking=TrackingSettings(max_event_s=8.0))
    settings = AgentSettings(gateway_id="gw-live", data_dir=tmp_path / "edge", stall_timeout_s=2.0,
                             open_timeout_s=3.0, reconnect_min_s=0.2, reconnect_max_s=1.0)
    got: list = []
    agent = EdgeAgent(settings, StaticConfig(GatewayConfig(defaults=cfg)), gateway_detector,
                      Outbox(settings.outbox_path), on_candidate=got.append)
    thread = threading.Thread(target=agent.run_live, args=(server.url, "street"), daemon=True)
    thread.start()
    killer = threading.Timer(90, agent.stop)  # a bound on the whole test: a hang fails, it does not block
    killer.start()
    try:
        assert _wait(lambda: len(got) >= 1, 60), agent.camera_status()
        server.kill()
        assert _wait(lambda: agent.camera_status()["street"].state in ("reconnecting", "stalled"), 20)
        dropped_at = len(got)
        server.start()
        assert _wait(lambda: agent.camera_status()["street"].state == "connected"
                     and agent.camera_status()["street"].reconnects >= 1, 30)
        assert _wait(lambda: len(got) > dropped_at, 60), "no candidate after the reconnect"
    finally:
        agent.stop()
        killer.cancel()
        thread.join(30)
        server.stop()
    status = agent.camera_status()["street"]
    assert status.state == "stopped" and "pa$$" not in status.source and status.candidates == len(got)
    times = [event_id_time(c.event_id).timestamp() for c in got]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 120  # wall-clock ids for a stream
    assert all(c.clip is not None and c.clip.uri.endswith(".mkv") for c in got)


