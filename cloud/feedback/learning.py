"""`not-person` on a confirmed event → the camera's false-positive memory, in the cloud and on the gateway.

From the event's snapshot (the gateway's best frame, from the object store) and the boxes it alerted on,
the camera's memory (models.fp_memory) gains one entry per box. Then, in this order:
1. the new version is written as an artifact, `fp-memory/{camera}/v{version}.json` (S3 in AWS mode, the local
   object folder on the embedded default), and `fp-memory/{camera}/current.json` points at it;
2. the verifier's copy (its memory folder, settings.memory_dir) is replaced: it consults it from the next
   candidate on;
3. the camera's desired config gets `fp_memory: {version, sha256, uri}` (contracts.FpMemoryRef) in its
   gateway's named shadow; the agent fetches, checks and installs it (edge_agent/fp_memory_sync.py).
`sha256` is FpMemory.content_sha256(): the entries that decide matching, independent of hit counters.

Learning one event twice changes nothing: an event already in the memory is not added again (the reference is
sent again, so a shadow write that failed the first time is retried by repeating the feedback).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cloud.events.record import EventRecord
from cloud.feedback.shadow_refs import RefPublisher
from cloud.ports import ObjectStore
from cloud.storage.keys import tag_value
from contracts import FpMemoryRef, validate_camera_id
from models.fp_memory import Box, FpMemory, FpMemoryStore

log = logging.getLogger(__name__)

ARTIFACT_PREFIX = "fp-memory"
MAX_ENTRIES_PER_EVENT = 8  # a crowd flagged "not a person" must not flood the memory


class LearningError(RuntimeError):
    """The event cannot be learnt from (no snapshot, no box); the label itself is stored."""


def artifact_key(camera_id: str, version: int) -> str:
    return f"{ARTIFACT_PREFIX}/{validate_camera_id(camera_id)}/v{int(version)}.json"


def current_key(camera_id: str) -> str:
    return f"{ARTIFACT_PREFIX}/{validate_camera_id(camera_id)}/current.json"


def alerted_boxes(record: EventRecord, snapshot_width: int) -> list[Box]:
    """The boxes the alert was about, in snapshot pixels. The gateway's boxes are drawn on the snapshot's own
    frame, so they come first; the verifier's (found on its best frame, perhaps another moment) are the
    fallback for records that do not keep the candidate."""
    facts = record.candidate_facts() or {}
    boxes = facts.get("boxes") or []
    frame_width = facts.get("frame_width")
    if not boxes:
        boxes = [b.model_dump() for b in record.verdict().boxes]
    if not boxes:
        raise LearningError(f"event {record.event_id}: neither the gateway nor the verifier kept a box")
    if not frame_width:
        raise LearningError(f"event {record.event_id}: the record does not say the frame size of its boxes")
    scale = snapshot_width / float(frame_width)
    return [(b["x1"] * scale, b["y1"] * scale, b["x2"] * scale, b["y2"] * scale) for b in boxes]


@dataclass
class FpMemoryLearner:
    objects: ObjectStore
    publisher: RefPublisher | None = None
    memory_dir: Path | None = None  # the verifier's folder (embedded default); None where it has none
    memories: FpMemoryStore | None = None  # an in-process verifier's store: updated in place as well

    def learn(self, record: EventRecord) -> FpMemoryRef:
        camera = validate_camera_id(record.camera_id)
        memory = self.current(camera)
        if any(e.source_event_id == record.event_id for e in memory.entries):
            ref = self._ref(memory, self._uri_of(camera, memory.version))
            log.info("event already in the camera's fp memory", extra={
                "event_id": record.event_id, "camera_id": camera, "fp_memory_version": memory.version})
        else:
            image = self._snapshot(record)
            boxes = alerted_boxes(record, image.shape[1])[:MAX_ENTRIES_PER_EVENT]
            for box in boxes:
                memory.add(image, box, source_event_id=record.event_id, label="not-person")
            ref = self._write(memory)
            log.info("fp memory learnt from feedback", extra={
                "event_id": record.event_id, "camera_id": camera, "entries_added": len(boxes),
                "fp_memory_version": memory.version, "sha256": ref.sha256})
        if self.publisher is not None:
            self.publisher.publish(record.gateway_id, camera, ref)
        return ref

    # -- reading ----------------------------------------------------------------------------------
    def current(self, camera_id: str) -> FpMemory:
        """The newest memory of the camera: the published artifact, or the verifier's copy if newer."""
        found = [m for m in (self._published(camera_id), self._local(camera_id)) if m is not None]
        if not found:
            return FpMemory(camera_id=camera_id)
        return max(found, key=lambda m: m.version)

    def _published(self, camera_id: str) -> FpMemory | None:
        try:
            pointer = json.loads(self.objects.get_bytes(current_key(camera_id)))
            doc = json.loads(self.objects.get_bytes(artifact_key(camera_id, int(pointer["version"]))))
        except Exception as exc:  # missing (FileNotFoundError, NoSuchKey) is the common case
            if not _missing(exc):
                raise
            return None
        return FpMemory.from_document(doc)

    def _local(self, camera_id: str) -> FpMemory | None:
        if self.memories is not None:
            return _copy(self.memories.get(camera_id))
        if self.memory_dir is None:
            return None
        path = FpMemoryStore(self.memory_dir).path(camera_id)
        return FpMemory.load(path, camera_id) if path.exists() else None

    def _snapshot(self, record: EventRecord) -> np.ndarray:
        if not record.snapshot_key:
            raise LearningError(f"event {record.event_id} has no snapshot to learn from")
        try:
            data = self.objects.get_bytes(record.snapshot_key)
        except Exception as exc:  # missing, or a store error (raised)
            if _missing(exc):
                raise LearningError(f"event {record.event_id}: snapshot {record.snapshot_key} is gone") from exc
            raise
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise LearningError(f"event {record.event_id}: snapshot {record.snapshot_key} is not a picture")
        return image

    # -- writing ----------------------------------------------------------------------------------
    def _uri_of(self, camera_id: str, version: int) -> str | None:
        path_for = getattr(self.objects, "path_for", None)
        if path_for is not None:
            return path_for(artifact_key(camera_id, version)).as_uri()
        bucket = getattr(self.objects, "bucket", None)
        return f"s3://{bucket}/{artifact_key(camera_id, version)}" if bucket else None

    @staticmethod
    def _ref(memory: FpMemory, uri: str | None) -> FpMemoryRef:
        return FpMemoryRef(version=memory.version, sha256=memory.content_sha256(), uri=uri)

    def _write(self, memory: FpMemory) -> FpMemoryRef:
        camera = memory.camera_id
        tags = {"kind": "fp-memory", "camera": tag_value(camera)}
        uri = self.objects.put_bytes(artifact_key(camera, memory.version), json.dumps(memory.to_document()).encode(),
                                     "application/json", tags)
        ref = self._ref(memory, uri)
        self.objects.put_bytes(current_key(camera), ref.model_dump_json().encode(), "application/json", tags)
        if self.memories is not None:
            self.memories.replace(memory)
        elif self.memory_dir is not None:
            FpMemoryStore(self.memory_dir).replace(memory)
        return ref


def _copy(memory: FpMemory) -> FpMemory:
    return FpMemory.from_document(json.loads(json.dumps(memory.to_document())))


def _missing(exc: Exception) -> bool:
    if isinstance(exc, FileNotFoundError):
        return True
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("NoSuchKey", "404", "NotFound")
