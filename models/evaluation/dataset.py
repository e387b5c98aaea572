"""Reading a labelled set: `labels.json` (images) and `videos/labels.json` (clips with person intervals)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ImageItem:
    path: Path
    person: bool
    boxes: list[list[float]]
    tags: tuple[str, ...] = ()
    source: str | None = None  # where the file came from (may name the clip a still was cut from)
    camera: str | None = None  # camera view, where the labels give one


@dataclass(frozen=True)
class ClipItem:
    path: Path
    person_intervals: list[tuple[float, float]]
    ignore_intervals: list[tuple[float, float]] = field(default_factory=list)  # partly visible bodies
    duration_s: float = 0.0
    tags: tuple[str, ...] = ()
    boxes_file: Path | None = None  # per-frame person boxes (`<clip>.boxes.csv`), where the source has them
    camera: str | None = None  # camera view, where the labels give one
    notes: str | None = None


@dataclass
class Dataset:
    root: Path
    images: list[ImageItem]
    clips: list[ClipItem]


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    images: list[ImageItem] = []
    labels = root / "labels.json"
    if labels.exists():
        for entry in json.loads(labels.read_text())["images"]:
            images.append(ImageItem(root / entry["file"], bool(entry["person_present"]),
                                    entry.get("person_boxes_xyxy") or [], tuple(entry.get("tags") or ()),
                                    entry.get("source"), entry.get("camera") or None))
    clips: list[ClipItem] = []
    video_labels = root / "videos" / "labels.json"
    if video_labels.exists():
        for entry in json.loads(video_labels.read_text())["videos"]:
            clips.append(ClipItem(
                root / entry["file"],
                [tuple(i) for i in entry.get("person_intervals_s") or []],
                [tuple(i) for i in entry.get("partial_body_intervals_s") or []],
                float(entry.get("duration_s") or 0.0),
                tuple(entry.get("tags") or ()),
                root / entry["boxes_file"] if entry.get("boxes_file") else None,
                entry.get("camera") or None,
                entry.get("notes"),
            ))
    if not images and not clips:
        raise FileNotFoundError(f"{root} has neither labels.json nor videos/labels.json")
    return Dataset(root, images, clips)
