"""edge_agent.metrics: stdlib EMF lines, counts summed between flushes, the heartbeat's per-camera health,
rotation bound, and a full disk that costs the metrics only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from cloud.metrics.names import EDGE_METRICS as CLOUD_SIDE_NAMES
from contracts.telemetry import CameraStatus, Heartbeat
from edge_agent import metrics
from edge_agent.metrics import EDGE_METRICS, EdgeMetrics, RotatingFile, dropped_rule
from tests.unit.emf_check import assert_emf


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def beat(**cameras: CameraStatus) -> Heartbeat:
    return Heartbeat(gateway_id="gw-1", sent_at=datetime(2026, 11, 30, tzinfo=UTC), uptime_s=5, outbox_pending=4,
                     sent_total=1, cameras=cameras)


def test_counts_are_summed_and_written_once_a_period(tmp_path: Path) -> None:
    clock = Clock()
    m = EdgeMetrics(tmp_path / "edge.jsonl", "gw-1", flush_s=60, clock=clock)
    for _ in range(3):
        m.count("Candidates", "cam1")
    m.count("Suppressed", "cam1", rule="fp_memory")
    assert not (tmp_path / "edge.jsonl").exists()  # nothing written before the period ends
    clock.t = 61
    m.count("FramesProcessed", "cam1", 25)  # this one crosses the period: everything is flushed
    docs = read(tmp_path / "edge.jsonl")
    assert [assert_emf(d) for d in docs] == [["Candidates"], ["FramesProcessed"], ["Suppressed"]]
    assert [(d["camera_id"], d["gateway_id"]) for d in docs] == [("cam1", "gw-1")] * 3
    assert (docs[0]["Candidates"], docs[1]["FramesProcessed"], docs[2]["Suppressed"]) == (3.0, 25.0, 1.0)
    assert docs[2]["rule"] == "fp_memory"
    assert docs[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["camera_id", "gateway_id", "rule"]]


def test_heartbeat_gives_camera_up_and_deltas(tmp_path: Path) -> None:
    m = EdgeMetrics(tmp_path / "edge.jsonl", "gw-1")
    m.heartbeat(beat(up=CameraStatus(state="connected", dropped_frames=5, reconnects=1),
                     down=CameraStatus(state="reconnecting", dropped_frames=0, reconnects=3)))
    m.heartbeat(beat(up=CameraStatus(state="connected", dropped_frames=9, reconnects=1),
                     down=CameraStatus(state="stalled", dropped_frames=0, reconnects=2)))  # agent restarted
    docs = read(tmp_path / "edge.jsonl")
    for doc in docs:
        assert_emf(doc)

    def values(name: str, camera: str | None = None) -> list[float]:
        return [d[name] for d in docs if name in d and d.get("camera_id") == camera]

    assert values("CameraUp", "up") == [1.0, 1.0] and values("CameraUp", "down") == [0.0, 0.0]
    assert values("FramesDropped", "up") == [5.0, 4.0]
    assert values("Reconnects", "down") == [3.0, 2.0]  # a smaller counter is a fresh count, never negative
    assert values("Heartbeat") == [1.0, 1.0] and values("OutboxPending") == [4.0, 4.0]
    assert next(d for d in docs if "Heartbeat" in d)["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["gateway_id"]]


def test_rotation_bound(tmp_path: Path) -> None:
    rotating = RotatingFile(tmp_path / "edge.jsonl", max_bytes=1024, backups=1)
    for i in range(200):
        rotating.append([json.dumps({"i": i, "pad": "y" * 30})])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edge.jsonl", "edge.jsonl.1"]
    assert all(p.stat().st_size <= 1024 for p in tmp_path.iterdir())
    assert json.loads((tmp_path / "edge.jsonl").read_text().splitlines()[-1])["i"] == 199


def test_unwritable_metrics_never_raise(tmp_path: Path, caplog) -> None:
    (tmp_path / "blocked").write_text("a file where the metrics folder should be")
    m = EdgeMetrics(tmp_path / "blocked" / "metrics" / "edge.jsonl", "gw-1", flush_s=0)
    m.count("Candidates", "cam1")  # flush_s=0: written at once, and fails
    assert any("metrics not written" in r.getMessage() for r in caplog.records)


def test_module_level_configure_count_and_flush(tmp_path: Path) -> None:
    metrics.configure(tmp_path, "gw-9")
    metrics.count("Dropped", "cam2", reason=dropped_rule("1 hit(s) < 3"))
    metrics.count("NotAMetric", "cam2")  # refused, logged, never raised
    metrics.count("Candidates", "cam2", value=float("nan"))
    metrics.count("Candidates", "", rule="")  # an empty dimension value: that series alone is dropped
    metrics.flush()
    docs = read(tmp_path / "metrics" / "edge.jsonl")
    assert [(d["gateway_id"], d["camera_id"], d["reason"], d["Dropped"]) for d in docs] == [
        ("gw-9", "cam2", "min_hits", 1.0)]


def test_dropped_reasons_are_bounded() -> None:
    assert [dropped_rule(r) for r in ("2 hit(s) < 3", "lasted 0.40s < 1.0s", "track score 0.41 < 0.60", "?")] == [
        "min_hits", "min_duration", "threshold", "other"]


def test_edge_and_cloud_agree_on_the_gateway_metric_names() -> None:
    assert EDGE_METRICS == CLOUD_SIDE_NAMES
