"""The verifier's view of each camera's false-positive memory, as the feedback loop publishes it.

The learner writes `fp-memory/{camera}/v{n}.json` and points `fp-memory/{camera}/current.json` at it, in the
media store (S3 in AWS mode). A verifier that runs for hours (an ECS worker, a warm Lambda) re-reads the
pointer at most every `ttl_s`, so a customer's "not a person" applies to the next candidates without a
restart. A read that fails keeps the last good memory: a flaky store never turns suppression off.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from cloud.feedback.learning import _missing, artifact_key, current_key
from cloud.ports import ObjectStore
from models.fp_memory import FpMemory

log = logging.getLogger(__name__)


class PublishedFpMemories:
    def __init__(self, objects: ObjectStore, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 ) -> None:
        self.objects = objects
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, FpMemory]] = {}  # camera → (checked at, memory)

    def get(self, camera_id: str) -> FpMemory:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(camera_id)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        memory = self._read(camera_id, cached[1] if cached else None)
        with self._lock:
            self._cache[camera_id] = (now, memory)
        return memory

    def _read(self, camera_id: str, last: FpMemory | None) -> FpMemory:
        try:
            pointer = json.loads(self.objects.get_bytes(current_key(camera_id)))
            version = int(pointer["version"])
            if last is not None and last.version == version:
                return last
            memory = FpMemory.from_document(json.loads(self.objects.get_bytes(artifact_key(camera_id, version))))
        except Exception as exc:
            if _missing(exc):
                return last or FpMemory(camera_id=camera_id)
            log.error("camera's fp memory unreadable; the last one read stays in force", extra={
                "camera_id": camera_id, "error": str(exc)[:300]})
            return last or FpMemory(camera_id=camera_id)
        if memory.camera_id != camera_id or (last is not None and memory.version < last.version):
            log.error("published fp memory refused (other camera or older version)", extra={
                "camera_id": camera_id, "found_camera": memory.camera_id, "found_version": memory.version})
            return last or FpMemory(camera_id=camera_id)
        log.info("fp memory loaded for the verifier", extra={"camera_id": camera_id,
                                                             "fp_memory_version": memory.version})
        return memory
