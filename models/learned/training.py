"""Training the learned head from a dataset folder (`vigia dataset build`), with leave-clips-out folds.

Embeddings of the stored crops are cached in the dataset folder per embedder (`embeddings-<id>.npz`), so a
second run, another seed or another regularisation costs seconds. Augmented copies of the training crops
(models.training.augment) are embedded on the fly; they follow their sample's group out of any fold that
holds it out, so no augmented twin of a scored crop is ever trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.learned.embedder import CropEmbedder
from models.learned.head import LearnedHead, TrainConfig, train_head
from models.training.dataset_format import MANIFEST_FILE, SAMPLES_FILE, SampleRow, read_samples

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class TrainingSet:
    root: Path
    rows: list[SampleRow]
    samples_sha256: str
    features: list[str]  # numeric feature names, sorted: the head's column order after the embedding

    @property
    def labels(self) -> np.ndarray:
        return np.array([1.0 if r.label == "person" else 0.0 for r in self.rows])

    @property
    def weights(self) -> np.ndarray:
        return np.array([r.weight for r in self.rows])

    @property
    def folds(self) -> np.ndarray:
        return np.array([r.fold for r in self.rows])

    def numeric(self) -> list[dict[str, float]]:
        return [r.features for r in self.rows]

    def crop(self, row: SampleRow) -> np.ndarray:
        image = cv2.imread(str(self.root / row.crop), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{self.root / row.crop}: unreadable crop")
        return image


def load_training_set(root: Path) -> TrainingSet:
    root = Path(root)
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.exists():
        raise FileNotFoundError(f"{root}: no {MANIFEST_FILE}; build it with `vigia dataset build`")
    manifest = json.loads(manifest_path.read_text())
    samples = root / SAMPLES_FILE
    digest = hashlib.sha256(samples.read_bytes()).hexdigest()
    if digest != manifest["samples_sha256"]:
        raise ValueError(f"{samples}: sha256 differs from {MANIFEST_FILE}; the training data was changed after it "
                         "was built")
    rows = read_samples(samples)
    if any(r.fold < 0 for r in rows):
        raise ValueError(f"{samples}: samples without a fold; rebuild the dataset")
    names = sorted({k for r in rows for k in r.features})
    return TrainingSet(root, rows, digest, names)


def embed_rows(ts: TrainingSet, embedder: CropEmbedder, progress: Progress = _quiet,
               batch: int = 64) -> np.ndarray:
    """(n, dim) embeddings of the stored crops, from the cache where it has them."""
    cache = ts.root / f"embeddings-{embedder.identity}.npz"
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as data:
            known = dict(zip(data["ids"].tolist(), data["vectors"], strict=True))
    missing = [r for r in ts.rows if r.id not in known]
    for start in range(0, len(missing), batch):
        part = missing[start:start + batch]
        for row, vector in zip(part, embedder.embed([ts.crop(r) for r in part]), strict=True):
            known[row.id] = vector
        progress(f"embedding crops: {min(start + batch, len(missing))}/{len(missing)}")
    if missing:
        ids = sorted(known)
        np.savez(cache, ids=np.array(ids), vectors=np.stack([known[i] for i in ids]))
    return np.stack([known[r.id] for r in ts.rows]) if ts.rows else np.zeros((0, embedder.dim), np.float32)


def augmented_rows(ts: TrainingSet, embedder: CropEmbedder, copies: int, seed: int,
                   progress: Progress = _quiet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`copies` augmented versions of every crop: (x, labels, weights, folds, row index)."""
    from models.training.augment import Augmenter

    if copies <= 0:
        empty = np.zeros(0)
        return np.zeros((0, embedder.dim + len(ts.features)), np.float32), empty, empty, empty.astype(int), empty
    augmenter = Augmenter(seed)
    images, index = [], []
    for i, row in enumerate(ts.rows):
        crop = ts.crop(row)
        for _ in range(copies):
            image, _applied = augmenter(crop)
            images.append(image)
            index.append(i)
    vectors = []
    for start in range(0, len(images), 64):
        vectors.append(embedder.embed(images[start:start + 64]))
        progress(f"embedding augmented crops: {min(start + 64, len(images))}/{len(images)}")
    emb = np.vstack(vectors)
    idx = np.array(index)
    x = np.hstack([emb, feature_matrix(ts, ts.features)[idx]])
    return x, ts.labels[idx], ts.weights[idx], ts.folds[idx], idx


def group_balanced(ts: TrainingSet, power: float) -> np.ndarray:
    """The samples' weights divided by (samples in their group) ** power, rescaled to a mean of 1."""
    groups = [r.group for r in ts.rows]
    counts = Counter(groups)
    weights = ts.weights / np.array([counts[g] ** power for g in groups], dtype=np.float64)
    return weights / weights.mean() if len(weights) else weights


def feature_matrix(ts: TrainingSet, names: list[str]) -> np.ndarray:
    return np.array([[r.features.get(n, 0.0) for n in names] for r in ts.rows], dtype=np.float32).reshape(
        len(ts.rows), len(names))


@dataclass
class Trained:
    head: LearnedHead
    fold_heads: dict[int, LearnedHead]  # fold -> head trained without it
    oof: np.ndarray  # each sample's P(person) from the head that did not see its fold
    metrics: dict[str, Any]


def train(ts: TrainingSet, embedder: CropEmbedder, *, config: TrainConfig = TrainConfig(), seed: int = 0,
          augment: int = 0, progress: Progress = _quiet) -> Trained:
    """The head on every sample, and one head per held-out fold with each sample's out-of-fold score."""
    x = np.hstack([embed_rows(ts, embedder, progress), feature_matrix(ts, ts.features)])
    labels, folds = ts.labels, ts.folds
    weights = group_balanced(ts, config.group_power)
    ax, ay, _aw, af, aidx = augmented_rows(ts, embedder, augment, seed, progress)
    aw = weights[aidx.astype(int)] if len(aidx) else np.zeros(0)
    kw = dict(embedder=embedder.identity, numeric_features=ts.features, config=config, seed=seed)
    oof, fold_heads = fold_scores(x, labels, weights, folds, (ax, ay, aw, af), embedder.dim,
                                  [r.features for r in ts.rows], progress, **kw)
    head = train_head(np.vstack([x, ax]), np.concatenate([labels, ay]), np.concatenate([weights, aw]), **kw)
    metrics = crop_metrics(ts, oof, config.threshold)
    head.meta.update({"dataset_sha256": ts.samples_sha256, "augment_copies": augment,
                      "embedder_model": embedder.model_label, "cv": metrics["overall"]})
    progress(f"trained on {len(labels)} samples (+{len(ay)} augmented); out-of-fold: "
             f"{metrics['overall']['persons_found']}/{metrics['overall']['persons']} persons, "
             f"{metrics['overall']['negatives_passed']}/{metrics['overall']['negatives']} negatives passed")
    return Trained(head, fold_heads, oof, metrics)


def fold_scores(x: np.ndarray, labels: np.ndarray, weights: np.ndarray, folds: np.ndarray,
                augmented: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], dim: int,
                numeric: list[dict[str, float]], progress: Progress = _quiet,
                **kw: Any) -> tuple[np.ndarray, dict[int, LearnedHead]]:
    """One head per fold, trained without it (and without the augmented copies of its crops); each sample's
    P(person) from the head of its own fold. NaN where no head could be trained without the fold."""
    ax, ay, aw, af = augmented
    oof = np.full(len(labels), np.nan)
    fold_heads: dict[int, LearnedHead] = {}
    for fold in sorted(set(folds.tolist())):
        keep, akeep = folds != fold, af != fold
        if len(set(labels[keep].tolist())) < 2:
            # Nothing honest can judge this fold: every head would have seen it or lack a class.
            progress(f"fold {fold}: the other folds hold only one class; its samples get no out-of-fold score")
            continue
        head = train_head(np.vstack([x[keep], ax[akeep]]), np.concatenate([labels[keep], ay[akeep]]),
                          np.concatenate([weights[keep], aw[akeep]]), **kw)
        held = np.flatnonzero(~keep)
        oof[held] = head.predict(x[held][:, :dim], [numeric[i] for i in held])
        fold_heads[fold] = head
        progress(f"fold {fold}: trained on {int(keep.sum())} samples (+{int(akeep.sum())} augmented), "
                 f"scored {len(held)}")
    return oof, fold_heads


def crop_metrics(ts: TrainingSet, oof: np.ndarray, threshold: float) -> dict[str, Any]:
    """Out-of-fold person recall and negatives passed, overall and per group."""
    def tally(mask: np.ndarray) -> dict[str, Any]:
        scored = mask & ~np.isnan(oof)
        labels = ts.labels[scored]
        said = oof[scored] >= threshold
        return {"persons": int(labels.sum()), "persons_found": int((said & (labels == 1)).sum()),
                "negatives": int((labels == 0).sum()), "negatives_passed": int((said & (labels == 0)).sum()),
                "unscored": int((mask & np.isnan(oof)).sum())}

    groups = np.array([r.group for r in ts.rows])
    return {"threshold": threshold, "protocol": "out-of-fold: each crop scored by the head trained without its fold "
            "(folds are whole clips / camera views)",
            "overall": tally(np.ones(len(groups), bool)),
            "per_group": {g: tally(groups == g) for g in sorted(set(groups.tolist()))}}
