"""The learned head: logistic regression on [backbone embedding, detector features] -> P(person).

Small on purpose: a few hundred labelled crops support a linear model on good features, not a deep one, and
a linear model's errors stay explainable. Trained full-batch with L-BFGS in PyTorch (CPU, seeded: the same
samples and seed give the same weights); run with numpy alone, so the verifier and the gateway need no torch.
The artifact is one JSON file: feature names, standardisation, weights, threshold and where it came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "vigia-learned-head/1"


@dataclass
class LearnedHead:
    embedder: str  # CropEmbedder.identity the weights belong to
    numeric_features: list[str]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float = 0.5  # P(person) at which a hypothesis counts as a person
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ensemble(self) -> tuple[str, ...]:
        """The detectors whose features the head reads (`<model>_score`), in catalog order: the verifier must
        run exactly these, or a missing model's features would read as 0."""
        from models.catalog import CATALOG

        named = {f.removesuffix("_score") for f in self.numeric_features if f.endswith("_score")}
        order = list(CATALOG)
        return tuple(sorted(named, key=lambda m: (order.index(m) if m in order else len(order), m)))

    def vectors(self, embeddings: np.ndarray, numeric: Sequence[dict[str, float]]) -> np.ndarray:
        extra = np.array([[row.get(name, 0.0) for name in self.numeric_features] for row in numeric],
                         dtype=np.float32).reshape(len(numeric), len(self.numeric_features))
        return np.hstack([np.asarray(embeddings, dtype=np.float32), extra])

    def predict(self, embeddings: np.ndarray, numeric: Sequence[dict[str, float]]) -> np.ndarray:
        if len(numeric) == 0:
            return np.zeros(0, dtype=np.float64)
        x = (self.vectors(embeddings, numeric).astype(np.float64) - self.mean) / self.std
        return 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))

    # -- artifact ------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "embedder": self.embedder, "numeric_features": self.numeric_features,
                "mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
                "weights": [float(v) for v in self.weights], "bias": float(self.bias),
                "threshold": float(self.threshold), "meta": self.meta}

    def save(self, path: Path) -> str:
        """Writes the artifact; returns its sha256."""
        data = json.dumps(self.to_json(), indent=1, sort_keys=True).encode()
        path.write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(cls, path: Path, sha256: str | None = None) -> LearnedHead:
        data = Path(path).read_bytes()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"{path}: sha256 differs from the expected {sha256[:12]}...")
        raw = json.loads(data)
        if raw.get("format") != FORMAT:
            raise ValueError(f"{path}: not a learned head ({raw.get('format')!r}, expected {FORMAT})")
        n = len(raw["weights"])
        if not (len(raw["mean"]) == len(raw["std"]) == n) or any(s <= 0 for s in raw["std"]):
            raise ValueError(f"{path}: inconsistent head (sizes or zero deviations)")
        return cls(raw["embedder"], list(raw["numeric_features"]), np.array(raw["mean"]), np.array(raw["std"]),
                   np.array(raw["weights"]), float(raw["bias"]), float(raw["threshold"]), dict(raw.get("meta", {})))


@dataclass(frozen=True)
class TrainConfig:
    # Weight decay on the standardised inputs, against the weighted mean loss. Strong, because samples are few
    # and the frames of one clip are near copies: weak decay fits clips, not people (leave-clips-out showed it).
    l2: float = 0.3
    # Each sample's weight is divided by (samples of its clip/camera group) ** group_power (1: every group
    # weighs the same), so one long clip with hundreds of big, easy people does not drown the few small and
    # night ones.
    group_power: float = 1.0
    max_iter: int = 200
    balance: bool = True  # each class weighs the same in total
    threshold: float = 0.5

    def as_dict(self) -> dict[str, Any]:
        return {"l2": self.l2, "group_power": self.group_power, "max_iter": self.max_iter, "balance": self.balance,
                "threshold": self.threshold}


def train_head(
    x: np.ndarray, labels: np.ndarray, sample_weights: np.ndarray, *, embedder: str, numeric_features: list[str],
    config: TrainConfig = TrainConfig(), seed: int = 0,
) -> LearnedHead:
    """x: (n, d) = [embedding | numeric features in `numeric_features` order]; labels 1 = person."""
    import torch

    labels = np.asarray(labels, dtype=np.float64)
    if len(set(labels.tolist())) < 2:
        raise ValueError("training needs both persons and negatives")
    torch.manual_seed(seed)
    mean = x.mean(axis=0).astype(np.float64)
    std = x.std(axis=0).astype(np.float64)
    std[std < 1e-6] = 1.0
    xs = torch.tensor((x - mean) / std, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.float64)
    w = np.asarray(sample_weights, dtype=np.float64).copy()
    if config.balance:
        for cls in (0.0, 1.0):
            mask = labels == cls
            w[mask] *= 0.5 * w.sum() / w[mask].sum()
    wt = torch.tensor(w / w.sum(), dtype=torch.float64)
    weights = torch.zeros(xs.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights, bias], max_iter=config.max_iter, line_search_fn="strong_wolfe")
    n = len(labels)

    def loss_fn() -> torch.Tensor:
        optimiser.zero_grad()
        logits = xs @ weights + bias
        loss = (wt * torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")).sum()
        loss = loss + 0.5 * config.l2 * (weights * weights).sum()
        loss.backward()
        return loss

    optimiser.step(loss_fn)
    return LearnedHead(embedder, list(numeric_features), mean, std, weights.detach().numpy().copy(),
                       float(bias.detach().item()), config.threshold,
                       {"train_config": config.as_dict(), "seed": seed, "samples": n,
                        "persons": int(labels.sum()), "negatives": int(n - labels.sum())})
