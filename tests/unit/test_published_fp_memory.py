"""The verifier's view of published false-positive memories: a new version applies after the TTL without a
restart, a broken or older artifact never replaces the last good one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cloud.feedback.learning import artifact_key, current_key
from cloud.feedback.published import PublishedFpMemories
from cloud.storage.local import FolderObjectStore
from models.fp_memory import FpMemory


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def publish(objects: FolderObjectStore, memory: FpMemory) -> None:
    objects.put_bytes(artifact_key(memory.camera_id, memory.version), json.dumps(memory.to_document()).encode(),
                      "application/json", {})
    objects.put_bytes(current_key(memory.camera_id), json.dumps({"version": memory.version}).encode(),
                      "application/json", {})


def memory_with(entries: int, camera: str = "cam1") -> FpMemory:
    memory = FpMemory(camera_id=camera)
    frame = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for i in range(entries):
        memory.add(frame, (10 + 40 * i, 20, 40 + 40 * i, 100), source_event_id=f"E{i}", label="not-person")
    return memory


def test_a_new_version_applies_after_the_ttl_and_nothing_older_or_broken_replaces_it(tmp_path: Path) -> None:
    objects, clock = FolderObjectStore(tmp_path), Clock()
    memories = PublishedFpMemories(objects, ttl_s=30, clock=clock)
    assert memories.get("cam1").entries == []  # nothing published yet: an empty memory, no error

    publish(objects, memory_with(1))
    assert memories.get("cam1").entries == []  # cached for the TTL
    clock.now = 31
    assert memories.get("cam1").version == 1

    publish(objects, memory_with(2))
    clock.now = 62
    assert memories.get("cam1").version == 2 and len(memories.get("cam1").entries) == 2

    objects.put_bytes(current_key("cam1"), json.dumps({"version": 1}).encode(), "application/json", {})
    clock.now = 93
    assert memories.get("cam1").version == 2  # an older version never comes back

    objects.put_bytes(current_key("cam1"), b"{not json", "application/json", {})
    clock.now = 124
    assert memories.get("cam1").version == 2  # an unreadable pointer keeps the last good memory
