"""The learned verification stage in the verifier: each hypothesis near the track gets P(person) from the head.

`hypothesis_features` names what the detectors say about a hypothesis (the same numbers at training and at
run time: the dataset builder mines regions with `make_miner`, which runs the verifier's own ensemble and
grouping); `LearnedStage.score` crops each hypothesis (models.learned.crops), embeds it and applies the head.
The decision then judges person / maybe / none by that probability instead of the hand-tuned evidence rules.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from cloud.verifier.decision import FULL_SCALE, FrameFindings, Hypothesis, frame_hypotheses
from cloud.verifier.ensemble import run_ensemble
from cloud.verifier.settings import VerifierSettings
from models.detector import PersonDetector
from models.learned.crops import context_crop
from models.learned.embedder import CropEmbedder
from models.learned.head import LearnedHead
from models.learned.samples import MinedRegion, Miner

log = logging.getLogger(__name__)


def hypothesis_features(hyp: Hypothesis, models: Sequence[str], width: int, height: int,
                        settings: VerifierSettings) -> dict[str, float]:
    """What the detectors say about one hypothesis, as named numbers (scores, scales, geometry)."""
    features: dict[str, float] = {"evidence": float(hyp.evidence)}
    for model in models:
        features[f"{model}_score"] = float(hyp.best(model))
        features[f"{model}_scales"] = float(len(hyp.scales(model, settings.cross_check_min)))
        features[f"{model}_full"] = float(any(d.model == model and d.scale == FULL_SCALE for d in hyp.members))
    x1, y1, x2, y2 = hyp.box
    h, w = max(y2 - y1, 1e-3), max(x2 - x1, 1e-3)
    features["log_height_px"] = math.log(h)
    features["height_frac"] = h / max(height, 1)
    features["log_aspect"] = math.log(h / w)
    features["members"] = float(len(hyp.members))
    return features


def make_miner(settings: VerifierSettings | None = None,
               detectors: Mapping[str, PersonDetector] | None = None) -> Miner:
    """Every hypothesis the verifier would form on a frame (full frame and every tile grid), with features."""
    from cloud.verifier.verifier import load_detectors

    settings = settings or VerifierSettings()
    chosen = dict(detectors) if detectors else load_detectors(settings)
    models = list(chosen)

    def mine(frame: np.ndarray) -> list[MinedRegion]:
        height, width = frame.shape[:2]
        detections = run_ensemble(chosen, [frame], list(settings.tile_grids), settings.score_floor)[0]
        hyps = frame_hypotheses(detections, models, settings, height)
        return [MinedRegion(h.box, hypothesis_features(h, models, width, height, settings))
                for h in hyps if h.evidence >= settings.learned_floor]

    return mine


class LearnedStage:
    """Embedder + head. `head` may be swapped between candidates (leave-clips-out evaluation does)."""

    def __init__(self, head: LearnedHead, embedder: CropEmbedder | None = None) -> None:
        self.embedder = embedder or CropEmbedder()
        self.head = head
        self.label = "learned head"
        self._check(head)

    @classmethod
    def from_file(cls, path: Path, sha256: str | None = None, embedder: CropEmbedder | None = None) -> LearnedStage:
        stage = cls(LearnedHead.load(path, sha256), embedder)
        stage.label = f"learned head {hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]}"
        return stage

    def _check(self, head: LearnedHead) -> None:
        if head.embedder != self.embedder.identity:
            raise ValueError(f"the learned head was trained on embedder {head.embedder}, this one is "
                             f"{self.embedder.identity}: retrain it on this model")

    def use(self, head: LearnedHead) -> None:
        self._check(head)
        self.head = head

    def check_ensemble(self, models: Sequence[str]) -> None:
        """The head's detector features must name exactly the ensemble's models: a missing model's features
        would silently read as 0."""
        if set(self.head.ensemble) != set(models):
            raise ValueError(f"the learned head was trained on the ensemble {list(self.head.ensemble)}, the "
                             f"verifier runs {list(models)}: use a head trained on a set mined with this ensemble "
                             "(`vigia dataset build --verifier-models`)")

    def score(self, frames: Sequence[tuple[float, np.ndarray]], findings: list[FrameFindings],
              models: Sequence[str], settings: VerifierSettings) -> list[FrameFindings]:
        """Copies of the findings, each hypothesis at or above `learned_floor` carrying `learned`."""
        self.check_ensemble(models)
        crops, numeric, where = [], [], []
        for fi, ((_, image), found) in enumerate(zip(frames, findings, strict=True)):
            height, width = image.shape[:2]
            for hi, hyp in enumerate(found.hypotheses):
                if hyp.evidence < settings.learned_floor:
                    continue
                try:
                    crops.append(context_crop(image, hyp.box))
                except ValueError:
                    continue
                numeric.append(hypothesis_features(hyp, models, width, height, settings))
                where.append((fi, hi))
        probs = self.head.predict(self.embedder.embed(crops), numeric) if crops else []
        out = [replace(f, hypotheses=list(f.hypotheses)) for f in findings]
        for (fi, hi), p in zip(where, probs, strict=True):
            out[fi].hypotheses[hi] = replace(out[fi].hypotheses[hi], learned=float(p))
        return out
