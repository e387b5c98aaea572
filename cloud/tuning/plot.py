"""The tuning curve as a PNG: person recall and its lower bound (left axis), false alerts (right axis)
against the threshold, with the target, the current and the chosen thresholds marked."""

from __future__ import annotations

from pathlib import Path

from cloud.tuning.threshold import TuningResult


def plot_curve(result: TuningResult, path: Path, title: str | None = None, parameter: str = "track threshold") -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on servers and in CI
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ValueError("--plot needs matplotlib (pip install 'vigia[dev]' or matplotlib)") from exc
    xs = [p.threshold for p in result.curve]
    fig, left = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        left.plot(xs, [p.recall for p in result.curve], color="tab:blue", label="person recall")
        left.plot(xs, [p.recall_lower for p in result.curve], color="tab:blue", linestyle="--",
                  label=f"recall, {result.confidence:.0%} lower bound (Clopper-Pearson)")
        left.axhline(result.target, color="grey", linewidth=0.8, linestyle=":", label=f"target {result.target}")
        left.set_xlabel(parameter)
        left.set_ylabel("person recall (among labeled people)")
        left.set_ylim(0, 1.02)
        right = left.twinx()
        right.step(xs, [p.false_alerts for p in result.curve], where="post", color="tab:red",
                   label="false alerts (labeled not-person)")
        right.set_ylabel("false alerts", color="tab:red")
        left.axvline(result.current, color="black", linewidth=1, label=f"current {result.current:.2f}")
        if result.chosen is not None and result.chosen != result.current:
            left.axvline(result.chosen, color="tab:green", linewidth=1.5, label=f"chosen {result.chosen:.2f}")
        handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        left.legend(handles=handles, loc="lower left", fontsize=8)
        left.set_title(title or f"{result.camera_id}: {result.status} "
                       f"({result.people} people, {result.not_people} not-person labeled)", fontsize=10)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
