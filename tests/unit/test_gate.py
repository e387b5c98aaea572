"""The evaluation gate: a worse model is refused (lower recall, more false events, another dataset), a better
one passes, a tie is refused; every reason carries its numbers; `vigia gate` reports and records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.learned.gate import EvalSummary, gate, write_report
from models.learned.registry import Registry
from vigia.cli import main

DATASET = "a" * 64
PROTOCOL = "leave-clips-out, 5 folds, seed 0"


def summary(label: str = "1.0.0", *, hits: int = 75, false_alarms: int = 2, intervals_hit: int = 13,
            false_events: int = 2, dataset: str = DATASET, protocol: str = PROTOCOL,
            per_clip: bool = False) -> dict:
    out = {"label": label, "dataset_sha256": dataset, "protocol": protocol,
           "images": {"hits": hits, "n_person": 82, "false_alarms": false_alarms, "n_empty": 67},
           "clips": {"intervals_hit": intervals_hit, "intervals_total": 14, "false_events": false_events}}
    if per_clip:
        out["per_clip"] = [{"file": "night.mp4", "intervals_hit": 1, "intervals_total": 1,
                            "false_events": false_events},
                           {"file": "deer.mp4", "intervals_hit": 0, "intervals_total": 0, "false_events": 0}]
    return out


def judge(candidate: dict, current: dict):
    return gate(EvalSummary.model_validate(candidate), EvalSummary.model_validate(current))


def test_better_model_passes_with_numbers():
    result = judge(summary("1.1.0", false_events=0, false_alarms=1), summary("1.0.0"))
    assert result.passed
    assert any("from 4 (2 + 2) to 1 (1 + 0)" in r for r in result.reasons)
    assert result.deltas == {"image_recall": 0.0, "clip_recall": 0.0, "false_alarms": -1, "false_events": -2}


def test_higher_recall_alone_passes():
    assert judge(summary("1.1.0", hits=77), summary("1.0.0")).passed


@pytest.mark.parametrize("worse, phrase", [
    ({"hits": 74, "false_events": 0}, "Image recall fell from 75/82"),
    ({"intervals_hit": 12, "false_events": 0}, "Clip interval recall fell from 13/14 to 12/14"),
    ({"false_events": 3, "hits": 80}, "False events on clips rose from 2 to 3"),
    ({"false_alarms": 3, "false_events": 0}, "False alarms on stills rose from 2 to 3"),
])
def test_worse_model_is_refused(worse, phrase):
    result = judge(summary("1.1.0", **worse), summary("1.0.0"))
    assert not result.passed
    assert any(phrase in r for r in result.reasons), result.reasons


def test_tie_is_refused():
    result = judge(summary("1.1.0"), summary("1.0.0"))
    assert not result.passed and "ties" in result.reasons[0] and "75/82" in result.reasons[0]


def test_different_dataset_or_protocol_is_refused_even_when_better():
    better = {"false_events": 0, "false_alarms": 0, "hits": 82}
    result = judge(summary("1.1.0", dataset="b" * 64, **better), summary("1.0.0"))
    assert not result.passed and "cannot be compared" in result.reasons[0] and "bbbbbbbbbbbb" in result.reasons[0]
    result = judge(summary("1.1.0", protocol="random split", **better), summary("1.0.0"))
    assert not result.passed and "random split" in result.reasons[0]


def test_impossible_counts_are_bad_input():
    with pytest.raises(ValueError, match="exceeds"):
        EvalSummary.model_validate(summary(hits=90))


def test_report_json_and_png(tmp_path):
    cand, cur = summary("1.1.0", false_events=0, per_clip=True), summary("rules", per_clip=True)
    result = judge(cand, cur)
    path = write_report(result, EvalSummary.model_validate(cand), EvalSummary.model_validate(cur), tmp_path)
    report = json.loads(path.read_text())
    assert report["passed"] and report["reasons"] == result.reasons and report["current"]["label"] == "rules"
    png = (tmp_path / "gate.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def _register(registry: Registry, tmp_path: Path, label: str, **kw) -> str:
    head = tmp_path / "head.json"
    head.write_text(json.dumps({"label": label}))
    return registry.register(head, dataset_sha256=DATASET, metrics={"eval": summary(label, **kw)}, seed=0,
                             config={}).version


def test_cli_gate_against_baseline_records_and_exits(tmp_path, capsys):
    registry = Registry(tmp_path / "reg")
    baseline = tmp_path / "rules.json"
    baseline.write_text(json.dumps(summary("rules")))
    args = ["gate", "--registry", str(registry.root)]
    # nothing in service and no baseline yet: bad input
    v1 = _register(registry, tmp_path, "1.0.0", false_events=1)
    assert main([*args, "--candidate", v1, "--out", str(tmp_path / "g0")]) == 2
    assert main([*args, "--set-baseline", str(baseline)]) == 0
    assert main([*args, "--candidate", v1, "--out", str(tmp_path / "g1")]) == 0
    assert registry.get(v1).gate.passed and "False alarms + false events fell" in capsys.readouterr().out
    assert (tmp_path / "g1" / "gate.png").is_file()
    registry.promote(v1, "all", skip_canary=True)
    # the next version is compared with the one in service, and a worse one is refused and recorded
    v2 = _register(registry, tmp_path, "1.1.0", false_events=3)
    assert main([*args, "--candidate", v2, "--out", str(tmp_path / "g2")]) == 1
    entry = registry.get(v2)
    assert entry.status == "rejected" and "rose from 1 to 3" in " ".join(entry.gate.reasons)
    assert main([*args, "--candidate", "9.9.9", "--out", str(tmp_path / "g3")]) == 2
