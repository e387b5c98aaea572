"""`vigia tune --dataset D`: (score, person?) pairs from a labeled folder (the ../shared/datasets format),
scored by the gateway itself, for threshold tuning with held-out reporting.

Lives with the CLI because it runs edge_agent and hands the pairs to cloud.tuning (they never import each
other). The folder is read in place. The gateway runs with its decision thresholds at their lowest allowed
values, so that every score a threshold could be set to is seen; what stays fixed is the per-frame
`detect_threshold` for tracks (it shapes the tracks themselves) and the detector's own 0.05 floor.

- stills: one unit per image, its score the best person the gateway keeps in it (0 when none); the tuned
  value is the camera's `still_threshold`. Frames cut from a labeled video share that video's group, so
  cross-validation never trains on a frame and tests on its neighbour.
- clips: one person unit per labeled person interval, its score the best candidate overlapping it (0 when
  none); one not-person unit per candidate that overlaps no person interval (and no partly-visible-body
  interval, which counts neither way). The tuned value is the camera's track `threshold`.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cloud.tuning.threshold import LabeledScore
from contracts import CameraConfig, GatewayConfig
from models.evaluation.dataset import ClipItem, Dataset

log = logging.getLogger("vigia.tune")

Progress = Callable[[str], None]
STILLS_CAMERA = "tune-stills"  # the camera id the labeled stills are scored under
# stills cut from a dataset video belong to that video (README: pets09s2l1_f* from vtest.avi, opencv_tree_f*)
_FRAME_OF = {re.compile(r"^pets09s2l1_f"): "videos/vtest.avi", re.compile(r"^opencv_tree_f"): "videos/tree.avi"}


@dataclass
class DatasetScores:
    stills: list[LabeledScore] = field(default_factory=list)
    clips: list[LabeledScore] = field(default_factory=list)
    still_floor: float = 0.05
    clip_floor: float = 0.3
    current: CameraConfig = field(default_factory=CameraConfig)
    clips_scored: int = 0


def still_group(name: str) -> str:
    for pattern, video in _FRAME_OF.items():
        if pattern.match(name):
            return video
    return f"images/{name}"


def scoring_config(current: CameraConfig) -> GatewayConfig:
    """The camera's settings with thresholds at their floor: still_threshold at the minimum, the track
    threshold down to detect_threshold (the lowest CameraConfig allows).

    'auto' tiling looks at a still's 2x2 tiles whenever the full frame finds nobody at the still bar, so at
    any bar a still alerts on its best full-frame-or-tile score: stills are scored with the tiles always
    looked at (at the floor the full frame nearly always finds something, and the tiles would never run)."""
    low = CameraConfig.model_validate(current.model_copy(
        update={"still_threshold": 0.05, "threshold": current.detect_threshold}).model_dump())
    stills = low.model_copy(update={"tiling": "always"}) if current.tiling == "auto" else low
    return GatewayConfig(defaults=low, cameras={STILLS_CAMERA: stills})


def clip_units(item: ClipItem, group: str, candidates: list[tuple[float, float, float]]) -> list[LabeledScore]:
    """candidates: (start_s, end_s, score). Person intervals and unmatched candidates become units."""

    def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] <= b[1] and b[0] <= a[1]

    units = []
    for interval in item.person_intervals:
        best = max((s for a, b, s in candidates if overlaps((a, b), interval)), default=0.0)
        units.append(LabeledScore(score=best, person=True, group=group))
    for a, b, s in candidates:
        if any(overlaps((a, b), i) for i in [*item.person_intervals, *item.ignore_intervals]):
            continue
        units.append(LabeledScore(score=s, person=False, group=group))
    return units


def score_dataset(ds: Dataset, progress: Progress, current: CameraConfig | None = None, stills_only: bool = False,
                  max_images: int | None = None, max_clips: int | None = None,
                  work_dir: Path | None = None) -> DatasetScores:
    import cv2

    from edge_agent.agent import EdgeAgent
    from edge_agent.config_provider import StaticConfig
    from edge_agent.settings import AgentSettings
    from models.detector import PersonDetector
    from models.prepare import prepare

    current = current or CameraConfig()
    work = Path(work_dir or tempfile.mkdtemp(prefix="vigia-tune-"))
    settings = AgentSettings(data_dir=work / "edge")
    model_dir, _ = prepare(settings.model_id, "FP32", progress=lambda m: log.info(m))
    agent = EdgeAgent(settings, StaticConfig(scoring_config(current)), PersonDetector(model_dir))
    out = DatasetScores(current=current, clip_floor=current.detect_threshold)
    for i, item in enumerate(_subset(ds.images, max_images)):
        image = cv2.imread(str(item.path))
        if image is None:
            raise ValueError(f"{item.path}: unreadable image")
        report = agent.process_image(image, STILLS_CAMERA, item.path.name)
        score = max((c.score for c in report.candidates), default=0.0)
        out.stills.append(LabeledScore(score=score, person=item.person, group=still_group(item.path.name)))
        if i % 25 == 0:
            progress(f"stills: {i + 1}")
    if stills_only:
        return out
    for item in ds.clips[:max_clips]:
        progress(f"clip {item.path.name}")
        report = agent.process_clip(str(item.path), re.sub(r"[^A-Za-z0-9_-]", "-", item.path.stem)[:64])
        if report.error:
            log.error("clip unreadable; left out", extra={"clip": item.path.name, "error": report.error})
            continue
        found = [(c.start_offset_s, c.end_offset_s, c.score) for c in report.candidates]
        out.clips += clip_units(item, str(item.path.relative_to(ds.root)), found)
        out.clips_scored += 1
    return out


def _subset(images: list, limit: int | None) -> list:
    """The first `limit` images, half with people and half without (as far as there are), in file order."""
    if limit is None or limit >= len(images):
        return images
    people = [i for i in images if i.person][: (limit + 1) // 2]
    others = [i for i in images if not i.person][: limit - len(people)]
    return sorted(people + others, key=lambda i: str(i.path))
