"""A camera's memory of confirmed false positives: where they were and what they looked like.

A new detection is suppressed only when it is at a remembered place AND looks like what was there:
a person standing where the coat hangs still passes, because the appearance differs. The store is a
JSON document per camera, versioned, with a sha256 the named shadow can reference.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.appearance import signature, similarity
from models.geometry import iou  # re-exported: the gateway imports models.fp_memory.iou

Box = tuple[float, float, float, float]

__all__ = ["Box", "FpEntry", "FpMatch", "FpMemory", "FpMemoryStore", "iou"]


@dataclass
class FpEntry:
    entry_id: str
    box: Box  # normalised to frame size (0..1) so it survives a resolution change
    signature: np.ndarray
    created: float
    source_event_id: str | None = None
    label: str = ""
    hits: int = 0
    last_hit: float | None = None

    def to_json(self) -> dict:
        return {
            "entry_id": self.entry_id,
            "box": list(self.box),
            "signature": base64.b64encode(self.signature.astype(np.float16).tobytes()).decode(),
            "created": self.created,
            "source_event_id": self.source_event_id,
            "label": self.label,
            "hits": self.hits,
            "last_hit": self.last_hit,
        }

    @classmethod
    def from_json(cls, data: dict) -> FpEntry:
        sig = np.frombuffer(base64.b64decode(data["signature"]), dtype=np.float16).astype(np.float32)
        return cls(data["entry_id"], tuple(data["box"]), sig, data["created"], data.get("source_event_id"),
                   data.get("label", ""), data.get("hits", 0), data.get("last_hit"))


@dataclass(frozen=True)
class FpMatch:
    entry_id: str
    iou: float
    similarity: float


@dataclass
class FpMemory:
    camera_id: str
    entries: list[FpEntry] = field(default_factory=list)
    version: int = 0
    place_iou: float = 0.3
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # -- learning ---------------------------------------------------------------------------------
    def add(self, frame: np.ndarray, box: Box, source_event_id: str | None = None, label: str = "") -> FpEntry:
        """Remember a confirmed false positive (fed by reviewer or customer feedback)."""
        height, width = frame.shape[:2]
        norm = (box[0] / width, box[1] / height, box[2] / width, box[3] / height)
        entry = FpEntry(
            entry_id=hashlib.sha1(f"{self.camera_id}{norm}{time.time_ns()}".encode()).hexdigest()[:16],
            box=norm, signature=signature(frame, box), created=time.time(),
            source_event_id=source_event_id, label=label,
        )
        with self._lock:
            self.entries.append(entry)
            self.version += 1
        return entry

    def remove(self, entry_id: str) -> bool:
        with self._lock:
            before = len(self.entries)
            self.entries = [e for e in self.entries if e.entry_id != entry_id]
            changed = len(self.entries) != before
            if changed:
                self.version += 1
            return changed

    # -- matching ---------------------------------------------------------------------------------
    def match(self, frame: np.ndarray, box: Box, threshold: float) -> FpMatch | None:
        """The remembered false positive this detection repeats, if any."""
        if not self.entries:
            return None
        height, width = frame.shape[:2]
        norm = (box[0] / width, box[1] / height, box[2] / width, box[3] / height)
        places = [(e, iou(norm, e.box)) for e in self.entries]
        places = [(e, o) for e, o in places if o >= self.place_iou]
        if not places:
            return None
        try:
            sig = signature(frame, box)
        except ValueError:
            return None
        best: FpMatch | None = None
        for entry, overlap in places:
            sim = similarity(sig, entry.signature)
            if sim >= threshold and (best is None or sim > best.similarity):
                best = FpMatch(entry.entry_id, overlap, sim)
        if best is not None:
            with self._lock:
                for entry in self.entries:
                    if entry.entry_id == best.entry_id:
                        entry.hits += 1
                        entry.last_hit = time.time()
        return best

    # -- persistence ------------------------------------------------------------------------------
    def to_document(self) -> dict:
        return {"format": "vigia-fp-memory/1", "camera_id": self.camera_id, "version": self.version,
                "entries": [e.to_json() for e in self.entries]}

    def content_sha256(self) -> str:
        """Checksum of what matters (the entries), for the shadow's FpMemoryRef."""
        doc = {"camera_id": self.camera_id, "version": self.version,
               "entries": [{k: v for k, v in e.to_json().items() if k not in ("hits", "last_hit")}
                           for e in self.entries]}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_document()))
        tmp.replace(path)  # atomic: a crash never leaves half a memory

    @classmethod
    def from_document(cls, doc: dict) -> FpMemory:
        if doc.get("format") != "vigia-fp-memory/1":
            raise ValueError(f"not a Vigia false-positive memory: format {doc.get('format')!r}")
        return cls(camera_id=doc["camera_id"], version=int(doc.get("version", 0)),
                   entries=[FpEntry.from_json(e) for e in doc.get("entries", [])])

    @classmethod
    def load(cls, path: Path, camera_id: str) -> FpMemory:
        if not path.exists():
            return cls(camera_id=camera_id)
        return cls.from_document(json.loads(path.read_text()))


class FpMemoryStore:
    """One memory file per camera under a directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._cache: dict[str, FpMemory] = {}

    def path(self, camera_id: str) -> Path:
        return self.root / f"{camera_id}.fpmem.json"

    def get(self, camera_id: str) -> FpMemory:
        if camera_id not in self._cache:
            self._cache[camera_id] = FpMemory.load(self.path(camera_id), camera_id)
        return self._cache[camera_id]

    def save(self, camera_id: str) -> None:
        self.get(camera_id).save(self.path(camera_id))

    def replace(self, memory: FpMemory) -> None:
        """Install a memory received from the cloud (after its sha256 was checked)."""
        self._cache[memory.camera_id] = memory
        memory.save(self.path(memory.camera_id))
