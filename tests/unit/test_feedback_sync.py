"""The gateway side of the loop: FpMemorySync installs the memory a camera's config names, after checking it,
never goes back to an older version, and keeps the last good memory when an artifact is bad."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from contracts import FpMemoryRef
from edge_agent.config_store import ConfigStore
from edge_agent.fp_memory_sync import FpMemorySync
from models.fp_memory import FpMemory, FpMemoryStore
from tests.unit.feedback_helpers import POSTER_BOX, scene
from tests.waiting import wait_for as _eventually


def memory_with(picture, version_bumps: int = 1, camera: str = "porch") -> FpMemory:
    memory = FpMemory(camera_id=camera)
    for _ in range(version_bumps):
        memory.add(scene(picture), POSTER_BOX, source_event_id="01M8G5AT8NJSTMNJPV2B1QADE9")
    return memory


def publish(memory: FpMemory, folder: Path) -> FpMemoryRef:
    path = folder / f"v{memory.version}.json"
    path.write_text(json.dumps(memory.to_document()))
    return FpMemoryRef(version=memory.version, sha256=memory.content_sha256(), uri=path.as_uri())


def config_naming(ref: FpMemoryRef, camera: str = "porch") -> ConfigStore:
    store = ConfigStore()
    store.apply({"cameras": {camera: {"fp_memory": ref.model_dump(mode="json")}}}, version=1)
    return store


def test_installs_the_named_memory_and_the_next_detection_uses_it(tmp_path: Path, pictures) -> None:
    memory = memory_with(pictures["astronaut"])
    ref = publish(memory, tmp_path)
    memories = FpMemoryStore(tmp_path / "edge")
    sync = FpMemorySync(config_naming(ref), memories)
    assert sync.reconcile() == {"porch": "installed"}
    installed = memories.get("porch")
    assert (installed.version, installed.content_sha256()) == (ref.version, ref.sha256)
    assert installed.match(scene(pictures["astronaut"]), POSTER_BOX, 0.8) is not None
    assert installed.match(scene(pictures["chelsea"]), POSTER_BOX, 0.8) is None
    assert sync.reconcile() == {"porch": "current"}
    assert FpMemoryStore(tmp_path / "edge").get("porch").content_sha256() == ref.sha256  # survives a restart


def test_a_bad_artifact_is_refused_once_and_the_last_good_memory_stays(tmp_path: Path, pictures, caplog) -> None:
    good = memory_with(pictures["astronaut"])
    memories = FpMemoryStore(tmp_path / "edge")
    assert FpMemorySync(config_naming(publish(good, tmp_path)), memories).reconcile() == {"porch": "installed"}

    newer = memory_with(pictures["astronaut"], version_bumps=2)
    ref = publish(newer, tmp_path)
    tampered = ref.model_copy(update={"sha256": "0" * 64})
    (tmp_path / "yard").mkdir()
    other_camera = publish(memory_with(pictures["astronaut"], 2, camera="yard"), tmp_path / "yard")
    cases = {
        "sha256": tampered,
        "camera": ref.model_copy(update={"uri": other_camera.uri}),
        "version": ref.model_copy(update={"version": 3}),
        "readable": ref.model_copy(update={"uri": (tmp_path / "junk.json").as_uri()}),
    }
    (tmp_path / "junk.json").write_text("{not json")
    for what, bad in cases.items():
        sync = FpMemorySync(config_naming(bad), memories)
        with caplog.at_level(logging.ERROR, logger="vigia.edge"):
            caplog.clear()
            assert sync.reconcile() == {"porch": "refused"}, what
            assert sync.reconcile() == {"porch": "refused"}, what
        refusals = [r for r in caplog.records if r.getMessage() == "fp memory refused; the installed memory stays"]
        assert len(refusals) == 1, what  # once per reference, not on every pass
        assert (memories.get("porch").version, memories.get("porch").content_sha256()) == (1, good.content_sha256())


def test_never_goes_back_to_an_older_version(tmp_path: Path, pictures) -> None:
    old = memory_with(pictures["astronaut"])
    old_ref = publish(old, tmp_path)
    newer = memory_with(pictures["astronaut"], version_bumps=2)
    (tmp_path / "new").mkdir()
    memories = FpMemoryStore(tmp_path / "edge")
    assert FpMemorySync(config_naming(publish(newer, tmp_path / "new")), memories).reconcile() == {
        "porch": "installed"}
    assert FpMemorySync(config_naming(old_ref), memories).reconcile() == {"porch": "refused"}
    assert memories.get("porch").version == 2


def test_a_fetch_that_fails_is_retried_and_the_service_follows_config_changes(tmp_path: Path, pictures) -> None:
    memory = memory_with(pictures["astronaut"])
    ref = publish(memory, tmp_path)
    missing = ref.model_copy(update={"uri": (tmp_path / "not-yet.json").as_uri()})
    store = config_naming(missing)
    memories = FpMemoryStore(tmp_path / "edge")
    sync = FpMemorySync(store, memories, retry_s=0.05, max_retry_s=0.2)
    assert sync.reconcile() == {"porch": "failed"}
    sync.start()
    try:
        (tmp_path / "not-yet.json").write_text((tmp_path / f"v{memory.version}.json").read_text())
        assert _eventually(lambda: memories.get("porch").version == 1)  # the retry found it
        newer = memory_with(pictures["astronaut"], version_bumps=2)
        (tmp_path / "n").mkdir()
        store.apply({"cameras": {"porch": {"fp_memory": publish(newer, tmp_path / "n").model_dump(mode="json")}}},
                    version=2)
        assert _eventually(lambda: memories.get("porch").version == 2)  # the listener woke it
    finally:
        sync.stop()


def test_unsupported_scheme_is_refused(tmp_path: Path, pictures) -> None:
    ref = publish(memory_with(pictures["astronaut"]), tmp_path).model_copy(update={"uri": "ftp://host/v1.json"})
    memories = FpMemoryStore(tmp_path / "edge")
    assert FpMemorySync(config_naming(ref), memories).reconcile() == {"porch": "refused"}
    assert memories.get("porch").version == 0


