"""`vigia dataset build`: person and hard-negative crops from labelled folders and labelled events.

For every still and every sampled clip frame the miner (the detector ensemble, at every scale the verifier
looks at) proposes regions; the labeling rule (models.training.labeling) makes each a person, a negative, or
drops it; each kept region becomes `crops/<id>.png` (models.learned.crops.context_crop, the one way a
hypothesis becomes pixels). Then:

- balance: every person is kept; negatives are capped per group (`max_per_group`, hardest first, so one long
  clip does not dominate) and then cut to `negative_ratio` x persons, hardest first (highest detector score;
  ties broken by a seeded hash, so the result is deterministic for a seed);
- split: groups (models.training.split) are dealt to folds, checked disjoint;
- write: samples.jsonl, dataset.json (manifest, `samples_sha256`), report.json, and the crops kept.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.catalog import VERIFIER_MODELS
from models.evaluation.dataset import ClipItem, load_dataset
from models.learned.crops import context_crop
from models.learned.samples import Miner
from models.training import split as splitting
from models.training.dataset_format import (
    CROPS_DIR,
    FORMAT_VERSION,
    MANIFEST_FILE,
    REPORT_FILE,
    SAMPLES_FILE,
    DatasetManifest,
    InputFile,
    SampleRow,
    file_sha256,
    round_box,
    sample_id,
    write_samples,
)
from models.training.labeled_events import LabeledEvent
from models.training.labeling import (
    LABELING_RULE,
    FrameTruth,
    Labeled,
    clip_frame_truth,
    hardness,
    label_regions,
)
from models.video import VideoError, VideoReader

log = logging.getLogger(__name__)


class BuildSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_fps: float = Field(default=2.0, gt=0, le=30, description="clip frames mined per second")
    negative_ratio: float = Field(default=3.0, gt=0, le=100, description="negatives kept per person")
    max_per_group: int | None = Field(default=300, ge=1, description="negatives kept per group at most")
    folds: int = Field(default=5, ge=2, le=20)
    seed: int = 0
    interval_positives: Literal["top1", "none"] = "top1"
    interval_margin_s: float = Field(default=0.5, ge=0, le=5, description="unsure band around interval ends")
    clip_box_negatives: bool = Field(default=False, description="negatives from low-IoU regions of boxed clip "
                                     "frames (off: such ground truth misses people)")
    # The head's detector features name the ensemble's models: a set mined with one ensemble trains heads
    # for that ensemble only.
    verifier_models: tuple[str, ...] = Field(default=VERIFIER_MODELS, min_length=1,
                                             description="the verifier ensemble that mines the regions")


@dataclass
class Candidate:
    row: SampleRow
    hardness: float


def _tiebreak(sample: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}|{sample}".encode()).hexdigest()


def balance(candidates: list[Candidate], negative_ratio: float, max_per_group: int | None,
            seed: int) -> tuple[list[Candidate], dict[str, Any]]:
    """Keep every person; negatives capped per group then cut to the ratio, hardest first."""
    persons = [c for c in candidates if c.row.label == "person"]
    negatives = [c for c in candidates if c.row.label == "negative"]

    def order(c: Candidate) -> tuple[float, str]:
        return (-c.hardness, _tiebreak(c.row.id, seed))

    by_group: dict[str, list[Candidate]] = defaultdict(list)
    for c in negatives:
        by_group[c.row.group].append(c)
    capped: list[Candidate] = []
    cap_dropped: dict[str, int] = {}
    for group, items in by_group.items():
        items.sort(key=order)
        keep = items if max_per_group is None else items[:max_per_group]
        if len(keep) < len(items):
            cap_dropped[group] = len(items) - len(keep)
        capped.extend(keep)
    capped.sort(key=order)
    target = round(negative_ratio * len(persons)) if persons else len(capped)
    kept_neg = capped[:target]
    report = {
        "persons_kept": len(persons),
        "negatives_mined": len(negatives),
        "negatives_dropped_by_group_cap": dict(sorted(cap_dropped.items())),
        "negatives_dropped_by_ratio": len(capped) - len(kept_neg),
        "negatives_kept": len(kept_neg),
        "note": None if persons else "no person sample: the ratio cannot apply, every capped negative kept",
    }
    return persons + kept_neg, report


def read_boxes_csv(path: Path) -> tuple[list[float], list[list[list[float]]]]:
    """(sorted time stamps, boxes at each) from a `<clip>.boxes.csv`."""
    by_time: dict[float, list[list[float]]] = defaultdict(list)
    with open(path, newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            try:
                by_time[round(float(row["time_s"]), 4)].append(
                    [float(row["x_min"]), float(row["y_min"]), float(row["x_max"]), float(row["y_max"])])
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{n}: bad boxes row ({exc})") from exc
    times = sorted(by_time)
    return times, [by_time[t] for t in times]


def boxes_at(t: float, times: list[float], boxes: list[list[list[float]]], tolerance: float) -> list[list[float]]:
    """The boxes of the frame whose time stamp is nearest `t`, within `tolerance`; [] when none is."""
    i = bisect_left(times, t)
    best = min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t), default=None)
    if best is None or abs(times[best] - t) > tolerance:
        return []
    return boxes[best]


@dataclass
class _Stats:
    dropped: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    skipped_events: Counter[str] = field(default_factory=Counter)


class DatasetBuilder:
    """Collects candidates from labelled roots and events into `out`, then balances, splits and writes."""

    def __init__(self, out: Path, miner: Miner, settings: BuildSettings | None = None) -> None:
        self.out = Path(out)
        self.miner = miner
        self.settings = settings or BuildSettings()
        self.candidates: dict[str, Candidate] = {}
        self.inputs: list[InputFile] = []
        self.stats = _Stats()
        self.crops = self.out / CROPS_DIR
        if self.crops.exists():  # a rebuild: stale crops of an earlier run must not linger
            shutil.rmtree(self.crops)
        self.crops.mkdir(parents=True)

    # -- inputs -----------------------------------------------------------------------------------
    def add_labels_root(self, root: Path) -> None:
        root = Path(root)
        data = load_dataset(root)
        for name, kind in (("labels.json", "images_labels"), ("videos/labels.json", "clip_labels")):
            if (root / name).exists():
                self.inputs.append(InputFile(kind=kind, path=str(root / name), sha256=file_sha256(root / name)))
        clip_names = [c.path.name for c in data.clips] + list(splitting.load_known_views())
        for image in data.images:
            item = str(image.path.relative_to(root))
            group = splitting.image_group(item, image.source, clip_names, image.camera)
            frame = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
            if frame is None:
                self._error(f"{item}: cannot read the image")
                continue
            if image.person:
                truth = FrameTruth("boxes", image.boxes) if image.boxes else \
                    FrameTruth("ignore", reason="person still without boxes")
            else:
                truth = FrameTruth("no_person")
            self.stats.frames["images"] += 1
            self._add_frame(frame, truth, source="images", item=item, group=group, t=None, tags=list(image.tags))
            log.info("dataset: still mined", extra={"item": item, "candidates": len(self.candidates)})
        for clip in data.clips:
            self._add_clip(root, clip)

    def _add_clip(self, root: Path, clip: ClipItem) -> None:
        item = str(clip.path.relative_to(root))
        group = splitting.clip_group(item, clip.camera)
        times: list[float] | None = None
        boxes: list[list[list[float]]] = []
        if clip.boxes_file is not None:
            times, boxes = read_boxes_csv(clip.boxes_file)
            self.inputs.append(InputFile(kind="boxes", path=str(clip.boxes_file), sha256=file_sha256(clip.boxes_file)))
        try:
            with VideoReader(clip.path) as reader:
                tolerance = 0.5 / reader.fps if reader.fps else 0.02
                duration = clip.duration_s or float(reader.duration or 0.0)
                for frame in reader.frames(self.settings.sample_fps):
                    at = None if times is None else boxes_at(frame.ts, times, boxes, tolerance)
                    truth = clip_frame_truth(frame.ts, clip.person_intervals, clip.ignore_intervals, duration,
                                             self.settings.interval_margin_s, at)
                    self.stats.frames["clip frames"] += 1
                    self._add_frame(frame.image, truth, source="clips", item=item, group=group,
                                    t=round(frame.ts, 3), tags=list(clip.tags),
                                    box_negatives=self.settings.clip_box_negatives)
        except VideoError as exc:
            self._error(f"{item}: {exc}")
            return
        log.info("dataset: clip mined", extra={"item": item, "candidates": len(self.candidates)})

    def add_events(self, events: list[LabeledEvent], source: Literal["feedback", "review"],
                   input_file: Path, skipped: dict[str, int] | None = None) -> None:
        self.inputs.append(InputFile(kind=source, path=str(input_file), sha256=file_sha256(input_file)))
        for reason, n in (skipped or {}).items():
            self.stats.skipped_events[f"{source}: {reason}"] += n
        for ev in events:
            group = f"camera:{ev.camera}" if ev.camera else f"event:{ev.event_id}"
            truth = FrameTruth("no_person") if ev.label == "not-person" else FrameTruth("person_no_boxes")
            for t, frame in self._event_frames(ev):
                self._add_frame(frame, truth, source=source, item=ev.event_id, group=group, t=t, tags=[],
                                sources=(source, source, source))

    def _event_frames(self, ev: LabeledEvent) -> Iterator[tuple[float | None, np.ndarray]]:
        """The snapshot when there is one (the frame the event was judged on), else the clip's sampled frames."""
        if ev.snapshot is not None:
            frame = cv2.imread(str(ev.snapshot), cv2.IMREAD_COLOR)
            if frame is not None:
                yield None, frame
                return
            self._error(f"event {ev.event_id}: cannot read its snapshot")
        if ev.clip is not None:
            try:
                with VideoReader(ev.clip) as reader:
                    for frame in reader.frames(self.settings.sample_fps):
                        yield round(frame.ts, 3), frame.image
            except VideoError as exc:
                self._error(f"event {ev.event_id}: {exc}")

    def _error(self, message: str) -> None:
        log.warning("dataset: input skipped", extra={"error": message})
        self.stats.errors.append(message)

    def _add_frame(self, frame: np.ndarray, truth: FrameTruth, *, source: str, item: str, group: str,
                   t: float | None, tags: list[str], sources: tuple[str, str, str] | None = None,
                   box_negatives: bool = True) -> None:
        if truth.kind == "ignore":
            self.stats.frames[f"ignored: {truth.reason}"] += 1
            return
        regions = self.miner(frame)
        pos_src, neg_src, weak_src = sources or ("boxes", "negative_item", "interval")
        labeled, dropped = label_regions(regions, truth, interval_positives=self.settings.interval_positives,
                                         positive_source=pos_src, negative_source=neg_src, weak_source=weak_src,
                                         box_negatives=box_negatives)
        self.stats.dropped.update(dropped)
        h, w = frame.shape[:2]
        for lab in labeled:
            self._keep(frame, lab, source=source, item=item, group=group, t=t, tags=tags, size=(w, h))

    def _keep(self, frame: np.ndarray, lab: Labeled, *, source: str, item: str, group: str, t: float | None,
              tags: list[str], size: tuple[int, int]) -> None:
        sid = sample_id(source, item, t, lab.region.box)
        if sid in self.candidates:  # the same region twice (rounding): once is enough
            self.stats.dropped["duplicate region"] += 1
            return
        try:
            crop = context_crop(frame, lab.region.box)
        except ValueError as exc:
            self.stats.dropped["region outside the frame"] += 1
            log.debug("dataset: region skipped", extra={"item": item, "error": str(exc)})
            return
        name = f"{CROPS_DIR}/{sid}.png"
        cv2.imwrite(str(self.out / name), crop)
        row = SampleRow(id=sid, label=lab.label, label_source=lab.label_source, weight=lab.weight,  # type: ignore[arg-type]
                        source=source, item=item, group=group, camera=splitting.camera_of(group),  # type: ignore[arg-type]
                        t=t, frame_w=size[0], frame_h=size[1], box=round_box(lab.region.box),
                        features={k: float(v) for k, v in lab.region.features.items()}, crop=name, tags=tags)
        self.candidates[sid] = Candidate(row, hardness(row.features))

    # -- output -----------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Balance, split, write; returns the report."""
        s = self.settings
        kept, balance_report = balance(list(self.candidates.values()), s.negative_ratio, s.max_per_group, s.seed)
        rows = [c.row for c in kept]
        if rows:
            folds = splitting.assign_folds([r.group for r in rows], s.folds, s.seed)
            rows = [r.model_copy(update={"fold": folds[r.group]}) for r in rows]
            splitting.check_folds(rows)
        keep_ids = {r.id for r in rows}
        for sid in self.candidates:
            if sid not in keep_ids:
                (self.out / CROPS_DIR / f"{sid}.png").unlink(missing_ok=True)
        digest = write_samples(rows, self.out / SAMPLES_FILE)
        counts = count_rows(rows)
        manifest = DatasetManifest(
            format_version=FORMAT_VERSION, created=datetime.now(UTC).isoformat(timespec="seconds"),
            inputs=self.inputs, settings=s.model_dump(mode="json"), labeling_rule=LABELING_RULE,
            split_rule=splitting.SPLIT_RULE, counts=counts, samples_sha256=digest)
        (self.out / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")
        report = {
            "samples_sha256": digest,
            "counts": counts,
            "balance": balance_report,
            "frames": dict(sorted(self.stats.frames.items())),
            "regions_dropped_by_labeling": dict(sorted(self.stats.dropped.items())),
            "events_skipped": dict(sorted(self.stats.skipped_events.items())),
            "errors": self.stats.errors,
        }
        (self.out / REPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        return report


def count_rows(rows: list[SampleRow]) -> dict[str, Any]:
    def by(key: Any) -> dict[str, dict[str, int]]:
        table: dict[str, Counter[str]] = defaultdict(Counter)
        for r in rows:
            table[str(key(r))][r.label] += 1
        return {k: dict(sorted(v.items())) for k, v in sorted(table.items())}

    return {
        "total": len(rows),
        "label": dict(sorted(Counter(r.label for r in rows).items())),
        "label_source": by(lambda r: r.label_source),
        "source": by(lambda r: r.source),
        "group": by(lambda r: r.group),
        "fold": by(lambda r: r.fold),
    }


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The printed summary of a build."""
    c = report["counts"]
    lines = [f"samples: {c['total']}  " + "  ".join(f"{k}: {v}" for k, v in c["label"].items()),
             f"samples_sha256: {report['samples_sha256']}"]
    for title in ("label_source", "source", "fold", "group"):
        lines.append(f"by {title}:")
        for k, v in c[title].items():
            lines.append(f"  {k:<40} person {v.get('person', 0):>6}  negative {v.get('negative', 0):>6}")
    b = report["balance"]
    lines.append(f"negatives: mined {b['negatives_mined']}, dropped by group cap "
                 f"{sum(b['negatives_dropped_by_group_cap'].values())}, by ratio {b['negatives_dropped_by_ratio']}")
    if report["regions_dropped_by_labeling"]:
        lines.append("regions dropped by the labeling rule: " + ", ".join(
            f"{k} {v}" for k, v in report["regions_dropped_by_labeling"].items()))
    for err in report["errors"]:
        lines.append(f"skipped: {err}")
    return lines
