"""The training set on disk: one row per kept sample (`samples.jsonl`) and the manifest (`dataset.json`).

`samples_sha256` (sha256 of samples.jsonl) identifies the training data: rows are written sorted by id with
sorted keys, so the same samples always give the same bytes and any changed sample changes the hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1
SAMPLES_FILE = "samples.jsonl"
MANIFEST_FILE = "dataset.json"
REPORT_FILE = "report.json"
CROPS_DIR = "crops"

Label = Literal["person", "negative"]
LabelSource = Literal["boxes", "interval", "negative_item", "feedback", "review"]
SourceKind = Literal["images", "clips", "feedback", "review"]


class SampleRow(BaseModel):
    """One crop around one mined region, with its label, where it came from and its split unit."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="stable: hash of source, item, time/frame and the rounded box")
    label: Label
    label_source: LabelSource
    weight: float = Field(gt=0, le=1, description="1 for sure labels, less for weak ones")
    source: SourceKind
    item: str = Field(description="path relative to its labels root, or the event id")
    group: str = Field(description="split unit: a clip, a camera view, or one still")
    camera: str | None = Field(default=None, description="camera view, where known")
    fold: int = Field(default=-1, ge=-1, description="cross-validation fold; -1 before the split")
    t: float | None = Field(default=None, description="seconds in the clip; None for stills")
    frame_w: int = Field(gt=0)
    frame_h: int = Field(gt=0)
    box: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2, frame pixels")
    features: dict[str, float] = Field(default_factory=dict, description="the miner's features, verbatim")
    crop: str = Field(description="crop PNG, relative to the dataset folder")
    tags: list[str] = Field(default_factory=list)


class InputFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["images_labels", "clip_labels", "boxes", "feedback", "review"]
    path: str
    sha256: str


class DatasetManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    created: str = Field(description="ISO UTC; not part of the data's identity")
    inputs: list[InputFile]
    settings: dict[str, Any]
    labeling_rule: str
    split_rule: str
    counts: dict[str, Any]
    samples_file: str = SAMPLES_FILE
    crops_dir: str = CROPS_DIR
    samples_sha256: str


def round_box(box: Any) -> list[float]:
    return [round(float(v), 1) for v in list(box)[:4]]


def sample_id(source: str, item: str, when: float | None, box: Any) -> str:
    """Stable id: the same region of the same frame always gets the same id, whatever the run."""
    when_key = "still" if when is None else f"{when:.3f}"
    key = "|".join([source, item, when_key, ",".join(f"{v:.1f}" for v in round_box(box))])
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def samples_bytes(rows: list[SampleRow]) -> bytes:
    lines = [json.dumps(r.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
             for r in sorted(rows, key=lambda r: r.id)]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def write_samples(rows: list[SampleRow], path: Path) -> str:
    """Write samples.jsonl; returns its sha256."""
    data = samples_bytes(rows)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_samples(path: Path) -> list[SampleRow]:
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(SampleRow.model_validate_json(line))
            except ValueError as exc:
                raise ValueError(f"{path}:{n}: not a sample row: {exc}") from exc
    return rows


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
