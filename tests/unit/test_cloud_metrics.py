"""cloud.metrics: EMF lines in both modes (file on the embedded default, stdout through powertools in AWS
mode), rotation bound, the pipeline's metrics, and `vigia stats` exact on a known file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud import metrics
from cloud.metrics.emf import build_emf, powertools_emf
from cloud.metrics.sink import RotatingJsonl
from cloud.metrics.summary import parse_since, summarise_dir
from cloud.runtime.wiring import build_pipeline
from cloud.settings import CloudSettings
from contracts import ClipRef
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate, write_avi
from tests.unit.emf_check import assert_emf

DIMS = {"gateway_id": "gw-1", "camera_id": "cam-front", "decision": "confirmed"}


@pytest.fixture(autouse=True)
def _metrics_off():
    yield
    metrics.configure("off")


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_mode_writes_emf_with_dimensions_and_event_id(tmp_path: Path) -> None:
    metrics.configure("file", tmp_path / "metrics" / "cloud.jsonl")
    with metrics.correlation("01EVENT"):
        metrics.emit("Verdicts", 1, "Count", DIMS, rollup=("decision",))
    first, rollup = lines(tmp_path / "metrics" / "cloud.jsonl")
    assert assert_emf(first) == ["Verdicts"] and assert_emf(rollup) == ["Verdicts"]
    assert first["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["camera_id", "decision", "gateway_id"]]
    assert (first["camera_id"], first["gateway_id"], first["decision"]) == ("cam-front", "gw-1", "confirmed")
    assert first["event_id"] == "01EVENT" and first["Verdicts"] in (1.0, [1.0])
    assert rollup["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["decision"]]
    assert rollup["rollup"] is True and "camera_id" not in rollup


def test_stdout_mode_through_powertools_is_emf(capsys) -> None:
    metrics.configure("stdout", use_powertools=True)
    metrics.metrics_for("verifier").emit("VerifierLatency", 812.5, "Milliseconds", {"camera_id": "c1"})
    (line,) = capsys.readouterr().out.splitlines()
    doc = json.loads(line)
    assert assert_emf(doc) == ["VerifierLatency"]
    assert doc["VerifierLatency"] == [812.5] and doc["service"] == "verifier"
    assert doc["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "VerifierLatency", "Unit": "Milliseconds"}]


def test_stdlib_builder_and_powertools_give_the_same_document() -> None:
    ours = build_emf("Candidates", 3, "Count", {"gateway_id": "g", "camera_id": "c"}, {"service": "s"},
                     timestamp_ms=1_800_000_000_000)
    theirs = powertools_emf("Candidates", 3, "Count", {"gateway_id": "g", "camera_id": "c"}, {"service": "s"})
    theirs["_aws"]["Timestamp"] = 1_800_000_000_000
    assert ours["_aws"] == theirs["_aws"]
    assert {k: v for k, v in ours.items() if k != "Candidates"} == {k: v for k, v in theirs.items()
                                                                     if k != "Candidates"}
    assert (ours["Candidates"], theirs["Candidates"]) == (3.0, [3.0])


@pytest.mark.parametrize(("name", "value", "unit", "dims"), [
    ("Verdicts", 1, "Apples", {}),  # unknown unit
    ("Verdicts", float("nan"), "Count", {}),
    ("Verdicts", 1, "Count", {"camera_id": ""}),  # empty dimension value
    ("_aws", 1, "Count", {}),
])
def test_bad_metric_is_dropped_with_a_warning_never_raised(tmp_path: Path, caplog, name, value, unit, dims) -> None:
    metrics.configure("file", tmp_path / "m.jsonl")
    metrics.emit(name, value, unit, dims)
    assert not (tmp_path / "m.jsonl").exists()
    assert any("dropped" in r.getMessage() for r in caplog.records)


def test_rotation_keeps_the_files_bounded(tmp_path: Path) -> None:
    sink = RotatingJsonl(tmp_path / "cloud.jsonl", max_bytes=2048, backups=2)
    for i in range(300):
        sink.write({"i": i, "pad": "x" * 40})
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["cloud.jsonl", "cloud.jsonl.1", "cloud.jsonl.2"]
    assert all(p.stat().st_size <= 2048 for p in tmp_path.iterdir())
    kept = [json.loads(line)["i"] for p in sink.files() for line in p.read_text().splitlines()]
    assert kept == list(range(300 - len(kept), 300))  # oldest first, contiguous, ending with the newest


def test_pipeline_emits_its_metrics_on_the_embedded_default(tmp_path: Path) -> None:
    write_avi(tmp_path / "incoming" / "cam-front" / "ev.avi")
    settings = CloudSettings(store="local", data_dir=tmp_path / "data", clip_root=tmp_path / "incoming")
    pipeline = build_pipeline(settings, decide_by_candidate_score)
    candidate = make_candidate(score=0.9, clip=ClipRef(kind="local", uri="cam-front/ev.avi"))
    pipeline.process(candidate.model_dump_json())
    pipeline.process(candidate.model_dump_json())  # redelivery
    pipeline.process(b"not json")
    docs = lines(settings.data_dir / "metrics" / "cloud.jsonl")
    per_camera = [d for d in docs if not d.get("rollup")]
    for doc in docs:
        assert_emf(doc)
    names = [assert_emf(d)[0] for d in per_camera]
    assert names == ["CandidatesReceived", "ClipsVerified", "FramesVerified", "Verdicts", "VerifierLatency",
                     "Notifications", "CandidatesReceived", "Duplicates", "DeadLetters"]
    verdict = next(d for d in per_camera if "Verdicts" in d)
    assert (verdict["decision"], verdict["camera_id"], verdict["gateway_id"]) == ("confirmed", "cam-front", "gw-1")
    assert verdict["event_id"] == candidate.event_id
    assert next(d for d in per_camera if "FramesVerified" in d)["FramesVerified"] == [6.0]
    assert next(d for d in per_camera if "DeadLetters" in d)["reason"] == "malformed"
    rollups = sorted(assert_emf(d)[0] for d in docs if d.get("rollup"))
    assert rollups == ["CandidatesReceived", "CandidatesReceived", "Notifications", "Verdicts", "VerifierLatency"]


def _line(name: str, value, unit: str, dims: dict, ts: int, **props) -> str:
    return json.dumps(build_emf(name, value, unit, dims, props, timestamp_ms=ts))


def test_stats_summary_is_exact_on_a_known_file(tmp_path: Path) -> None:
    t0 = 1_795_000_000_000
    cam = {"gateway_id": "gw-1", "camera_id": "cam-a"}
    known = [
        _line("FramesProcessed", 120, "Count", cam, t0),
        _line("FramesProcessed", 80, "Count", cam, t0 + 60_000),
        _line("DetectorCalls", 50, "Count", cam, t0),
        _line("Candidates", 2, "Count", cam, t0),
        _line("Suppressed", 3, "Count", {**cam, "rule": "fp_memory"}, t0),
        _line("Suppressed", 1, "Count", {**cam, "rule": "stationary"}, t0),
        _line("Verdicts", 1, "Count", {**cam, "decision": "confirmed"}, t0),
        _line("Verdicts", 1, "Count", {**cam, "decision": "rejected"}, t0),
        _line("Verdicts", 1, "Count", {"decision": "confirmed"}, t0, rollup=True),  # fleet copy: not counted
        _line("Notifications", 1, "Count", cam, t0),
        _line("feedback", 1, "Count", {"camera_id": "cam-a", "label": "not-person", "source": "cli"}, t0),
        *[_line("VerifierLatency", ms, "Milliseconds", cam, t0) for ms in (100, 400, 200, 300, 1000)],
        _line("Candidates", 7, "Count", {"gateway_id": "gw-1", "camera_id": "cam-b"}, t0),
        _line("DeadLetters", 2, "Count", {"reason": "malformed"}, t0),
        _line("Heartbeat", 1, "Count", {"gateway_id": "gw-1"}, t0),
        "not a metric line",
    ]
    (tmp_path / "edge" / "metrics").mkdir(parents=True)
    (tmp_path / "cloud" / "metrics").mkdir(parents=True)
    (tmp_path / "edge" / "metrics" / "edge.jsonl").write_text("\n".join(known[:6]) + "\n")
    (tmp_path / "cloud" / "metrics" / "cloud.jsonl").write_text("\n".join(known[6:]) + "\n")
    summary = summarise_dir(tmp_path)
    a, b = summary["cameras"]
    assert (a["camera_id"], a["gateway_id"], b["camera_id"]) == ("cam-a", "gw-1", "cam-b")
    assert (a["FramesProcessed"], a["DetectorCalls"], a["Candidates"], a["Notifications"]) == (200, 50, 2, 1)
    assert a["Suppressed"] == {"fp_memory": 3, "stationary": 1}
    assert a["Verdicts"] == {"confirmed": 1, "rejected": 1}
    assert a["feedback"] == {"not-person": 1}
    assert (a["latency_ms_p50"], a["latency_ms_p95"]) == (300, 1000)
    assert b["Candidates"] == 7 and b["Verdicts"] == {}
    assert summary["fleet"]["DeadLetters"] == {"malformed": 2} and summary["fleet"]["Heartbeat"] == 1
    assert (summary["lines"], summary["skipped_lines"]) == (len(known) - 2, 1)
    later = summarise_dir(tmp_path, since=datetime.fromtimestamp((t0 + 30_000) / 1000, UTC))
    assert [(r["camera_id"], r["FramesProcessed"]) for r in later["cameras"]] == [("cam-a", 80)]


def test_stats_command_json_and_errors(tmp_path: Path, capsys) -> None:
    from vigia.cli import main

    metrics.configure("file", tmp_path / "cloud" / "metrics" / "cloud.jsonl")
    metrics.count("Notifications", {"gateway_id": "g", "camera_id": "c"})
    assert main(["stats", "--data-dir", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["camera_id"], r["Notifications"]) for r in out["cameras"]] == [("c", 1.0)]
    assert main(["stats", "--data-dir", str(tmp_path / "nothing")]) == 2
    assert "no metrics files" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday-ish")
    assert parse_since("2h", now=datetime(2026, 11, 30, 12, tzinfo=UTC)) == datetime(2026, 11, 30, 10, tzinfo=UTC)
