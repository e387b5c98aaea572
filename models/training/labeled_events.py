"""Human-labelled events as training input, parsed from the files the cloud exports (models/ cannot import cloud/).

- Feedback: the JSON list `vigia events list --json` prints (or JSON Lines of the same objects): `event_id`,
  `camera_id`, `label` (person | not-person | unsure), `snapshot_key`, `clip_key`. Media keys are resolved
  against a media root (the clip store folder; default: the file's folder).
- Review manifest: the sampler's `manifest.json` (`{"events": [...]}`) with `event_id`, `camera_id`, `label`,
  `review_snapshot_key` / `review_clip_key` (keys start with the review set's name, so they resolve against the
  folder above the manifest's) or its `manifest.csv` with the same columns.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

LABEL_ALIASES = {"person": "person", "not-person": "not-person", "not_person": "not-person",
                 "notperson": "not-person", "unsure": "unsure"}


@dataclass(frozen=True)
class LabeledEvent:
    event_id: str
    camera: str | None
    label: Literal["person", "not-person"]
    snapshot: Path | None
    clip: Path | None


def _label(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    return LABEL_ALIASES.get(text) if text else None


def _resolve(key: Any, roots: list[Path]) -> Path | None:
    if not key:
        return None
    for root in roots:
        path = root / str(key)
        if path.is_file():
            return path
    return None


def _events(entries: list[dict[str, Any]], roots: list[Path], snap_field: str, clip_field: str,
            origin: Path) -> tuple[list[LabeledEvent], dict[str, int]]:
    out: list[LabeledEvent] = []
    skipped = {"unlabeled": 0, "unsure": 0, "no media": 0}
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("event_id"):
            raise ValueError(f"{origin}: an entry without event_id")
        label = _label(entry.get("label"))
        if label is None:
            skipped["unlabeled"] += 1
            continue
        if label == "unsure":
            skipped["unsure"] += 1
            continue
        snap, clip = _resolve(entry.get(snap_field), roots), _resolve(entry.get(clip_field), roots)
        if snap is None and clip is None:
            skipped["no media"] += 1
            log.warning("labelled event without readable media skipped",
                        extra={"event_id": entry["event_id"], "file": str(origin)})
            continue
        out.append(LabeledEvent(str(entry["event_id"]), entry.get("camera_id") or None, label,  # type: ignore[arg-type]
                                snap, clip))
    return out, skipped


def read_feedback(path: Path, media_root: Path | None = None) -> tuple[list[LabeledEvent], dict[str, int]]:
    path = Path(path)
    text = path.read_text()
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise ValueError(f"{path}: neither a JSON list nor JSON Lines of events") from exc
    if isinstance(data, dict):
        data = data.get("events", [])
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of events")
    roots = [media_root] if media_root else [path.parent]
    return _events(data, roots, "snapshot_key", "clip_key", path)


def read_review_manifest(path: Path) -> tuple[list[LabeledEvent], dict[str, int]]:
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with open(path, newline="") as fh:
            entries: list[dict[str, Any]] = list(csv.DictReader(fh))
    else:
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise ValueError(f"{path}: not a review manifest (no `events` list)")
        entries = data["events"]
    return _events(entries, [path.parent.parent, path.parent], "review_snapshot_key", "review_clip_key", path)
