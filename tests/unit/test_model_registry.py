"""The head version registry: the manifest chain (parents, sha256, history), promotion rules and rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.learned.gate import GateResult
from models.learned.registry import Registry, RegistryError, bump_version
from vigia.cli import main

DATASET = "d" * 64
PASSED = GateResult(passed=True, reasons=["better"], deltas={})
FAILED = GateResult(passed=False, reasons=["False events on clips rose from 2 to 3."], deltas={})


def _head(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "train" / name / "head.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"weights": [len(name)], "threshold": 0.5}))
    return path


def _new(registry: Registry, tmp_path: Path, name: str, *, gate: GateResult | None = PASSED,
         bump: str = "minor") -> str:
    entry = registry.register(_head(tmp_path, name), dataset_sha256=DATASET, metrics={"auc": 0.9}, seed=7,
                              config={"c": 1.0}, bump=bump, notes=name)
    if gate is not None:
        registry.record_gate(entry.version, gate, tmp_path / f"{name}-gate.json")
    return entry.version


def _serve(registry: Registry, tmp_path: Path, name: str) -> str:
    version = _new(registry, tmp_path, name)
    registry.promote(version, "canary")
    registry.promote(version, "all")
    return version


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


def test_three_versions_chain_and_verify(registry, tmp_path):
    v1 = _serve(registry, tmp_path, "a")
    v2 = _serve(registry, tmp_path, "b")
    v3 = _new(registry, tmp_path, "c", bump="patch")
    assert (v1, v2, v3) == ("1.0.0", "1.1.0", "1.1.1")
    assert [(e.version, e.parent, e.status) for e in registry.versions()] == [
        ("1.0.0", None, "retired"), ("1.1.0", "1.0.0", "in_service"), ("1.1.1", "1.1.0", "candidate")]
    assert registry.get(v3).dataset_sha256 == DATASET and registry.get(v3).seed == 7
    assert registry.artifact_path(v2).read_text() == _head(tmp_path, "b").read_text()
    assert registry.verify() == []
    # a second candidate from the same parent takes the next free number
    assert _new(registry, tmp_path, "d", bump="patch") == "1.1.2"


def test_tampered_artifact_is_caught(registry, tmp_path):
    v1 = _serve(registry, tmp_path, "a")
    stored = registry.root / "versions" / v1 / "head.json"
    stored.write_text('{"weights": [999]}')
    assert any("does not match its recorded sha256" in p for p in registry.verify())
    with pytest.raises(RegistryError, match="sha256"):
        registry.artifact_path(v1)


def test_hand_edited_status_parent_and_cycle_are_caught(registry, tmp_path):
    _serve(registry, tmp_path, "a")
    _serve(registry, tmp_path, "b")
    data = json.loads(registry.path.read_text())
    data["versions"][0]["status"] = "in_service"  # 1.0.0 claims service again
    data["versions"][0]["parent"] = "1.1.0"  # and 1.0.0 -> 1.1.0 -> 1.0.0
    registry.path.write_text(json.dumps(data))
    problems = registry.verify()
    assert any("1.0.0: status in_service but its history says retired" in p for p in problems)
    assert any("cycle" in p for p in problems)
    assert any("more than one version is in_service" in p for p in problems)
    data["versions"][0]["parent"] = "0.9.0"
    registry.path.write_text(json.dumps(data))
    assert any("parent 0.9.0 is not in the registry" in p for p in registry.verify())


def test_rollback_follows_service_history_not_parents(registry, tmp_path):
    v1 = _serve(registry, tmp_path, "a")
    v2 = _new(registry, tmp_path, "b")  # parent 1.0.0, never served
    v3 = _new(registry, tmp_path, "c")
    registry.promote(v3, "canary")
    registry.promote(v3, "all")
    v4 = _serve(registry, tmp_path, "d")
    assert registry.get(v4).parent == v3
    canary = _new(registry, tmp_path, "e")
    registry.promote(canary, "canary")
    assert registry.rollback().version == v3
    assert registry.get(v4).status == "rejected" and registry.canary() is None
    assert registry.get(canary).status == "candidate"
    assert registry.rollback().version == v1  # v2 (v3's parent) was never in service
    assert registry.get(v2).status == "candidate"
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback()
    assert registry.verify() == []
    assert [e.action for e in registry.history()][-2:] == ["rollback", "rollback"]


def test_rollback_with_nothing_behind_is_refused(registry, tmp_path):
    with pytest.raises(RegistryError, match="nothing is in service"):
        registry.rollback()
    _serve(registry, tmp_path, "a")
    with pytest.raises(RegistryError, match="first version"):
        registry.rollback()


def test_promote_refuses_ungated_failed_and_skipped_canary(registry, tmp_path):
    ungated = _new(registry, tmp_path, "a", gate=None)
    with pytest.raises(RegistryError, match="has not been through the gate"):
        registry.promote(ungated, "canary")
    failed = _new(registry, tmp_path, "b", gate=FAILED)
    assert registry.get(failed).status == "rejected"
    with pytest.raises(RegistryError, match="failed the gate: False events on clips rose from 2 to 3"):
        registry.promote(failed, "canary")
    good = _new(registry, tmp_path, "c")
    with pytest.raises(RegistryError, match="has not been on canary"):
        registry.promote(good, "all")
    assert registry.promote(good, "all", skip_canary=True).status == "in_service"
    with pytest.raises(KeyError, match="not in the registry"):
        registry.get("4.0.0")


def test_corrupt_registry_is_an_error_not_a_reset(registry, tmp_path):
    _serve(registry, tmp_path, "a")
    registry.path.write_text(registry.path.read_text().replace('"1.0.0"', '"v1"', 1))
    with pytest.raises(RegistryError, match="corrupt"):
        registry.versions()
    registry.path.write_text("{not json")
    with pytest.raises(RegistryError, match="corrupt"):
        registry.register(_head(tmp_path, "b"), dataset_sha256=DATASET, metrics={}, seed=0, config={})
    assert registry.path.read_text() == "{not json"


def test_bad_semver_and_dataset_hash_are_refused(registry, tmp_path):
    with pytest.raises(RegistryError, match="not semantic"):
        bump_version("1.0", "minor")
    with pytest.raises(ValueError, match="sha256"):
        registry.register(_head(tmp_path, "a"), dataset_sha256="abc", metrics={}, seed=0, config={})
    assert not registry.path.exists()


def test_cli_versions_and_verify(registry, tmp_path, capsys):
    _serve(registry, tmp_path, "a")
    _new(registry, tmp_path, "b")
    assert main(["models", "versions", "--registry", str(registry.root), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["version"], r["parent"], r["status"], r["dataset"]) for r in rows] == [
        ("1.0.0", None, "in_service", "d" * 12), ("1.1.0", "1.0.0", "candidate", "d" * 12)]
    assert main(["models", "verify", "--registry", str(registry.root)]) == 0
    (registry.root / "versions" / "1.1.0" / "head.json").write_text("{}")
    assert main(["models", "verify", "--registry", str(registry.root)]) == 1
    assert "1.1.0: artifact head.json does not match" in capsys.readouterr().out
    assert main(["models", "rollback", "--registry", str(registry.root)]) == 1
