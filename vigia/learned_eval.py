"""`vigia eval --stage system` with the learned stage: one head, or leave-clips-out heads.

Leave-clips-out (`--learned-cv DATASET`): the head is trained once per fold of the training set (folds are
whole clips and camera views, models.training.split), and each evaluated item is judged by the head of the
fold that holds its group, so no item is ever judged by a head trained on its own clip, its camera view or
the stills cut from it. Items whose group gave no training sample can be judged by the head trained on all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.evaluation.dataset import ClipItem, Dataset, ImageItem
from models.learned.embedder import CropEmbedder
from models.learned.head import LearnedHead, TrainConfig
from models.learned.training import Trained, TrainingSet, load_training_set, train
from models.training.split import clip_group, image_group

Progress = Callable[[str], None]


def item_group(ds: Dataset, item: ImageItem | ClipItem) -> str:
    if isinstance(item, ClipItem):
        return clip_group(item.path.name, item.camera)
    return image_group(str(item.path.relative_to(ds.root)), item.source, [c.path.name for c in ds.clips],
                       item.camera)


class CrossValidatedHeads:
    """Chooses, per evaluated item, the head that never saw the item's group."""

    def __init__(self, ts: TrainingSet, trained: Trained, protocol: str) -> None:
        self.ts = ts
        self.full, self.fold_heads, self.crop_metrics = trained.head, trained.fold_heads, trained.metrics
        self.group_fold = {r.group: r.fold for r in ts.rows}
        self.protocol = protocol
        self.assigned: dict[str, str] = {}

    @classmethod
    def train_on(cls, training_dir: Path, embedder: CropEmbedder, *, seed: int = 0, augment: int = 0,
                 config: TrainConfig = TrainConfig(), progress: Progress = print) -> CrossValidatedHeads:
        ts = load_training_set(training_dir)
        trained = train(ts, embedder, config=config, seed=seed, augment=augment, progress=progress)
        return cls(ts, trained, f"leave-clips-out: {len(trained.fold_heads)} folds of whole clips/camera views "
                   f"of training set {ts.samples_sha256[:12]}, seed {seed}, {augment} augmented copies per crop")

    def head_for(self, ds: Dataset, item: ImageItem | ClipItem) -> LearnedHead | None:
        """The head for the item; None when no head could be trained without its fold (the rules judge it)."""
        group = item_group(ds, item)
        fold = self.group_fold.get(group)
        key = str(item.path.relative_to(ds.root))
        if fold is None:
            self.assigned[key] = "all (its group gave no training sample)"
            return self.full
        if fold not in self.fold_heads:
            self.assigned[key] = f"rules (no head could be trained without fold {fold})"
            return None
        self.assigned[key] = f"fold {fold} held out"
        return self.fold_heads[fold]


def learned_summary(cv: CrossValidatedHeads | None, head_path: Path | None) -> dict[str, Any]:
    if cv is not None:
        return {"mode": "leave-clips-out", "protocol": cv.protocol, "training_set": cv.ts.samples_sha256,
                "crop_metrics": cv.crop_metrics["overall"], "heads_per_item": cv.assigned}
    return {"mode": "one head", "head": str(head_path)}
