"""The gate report's picture: the two versions side by side (recall, false alarms, false events, per clip)."""

from __future__ import annotations

from pathlib import Path

from models.learned.gate import EvalSummary, GateResult


def plot_gate(result: GateResult, candidate: EvalSummary, current: EvalSummary, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_clip = bool(candidate.per_clip or current.per_clip)
    fig, axes = plt.subplots(1, 4 if per_clip else 3, figsize=(18 if per_clip else 13, 4.8))
    names = (f"current {current.label}", f"candidate {candidate.label}")
    colors = ("#7f7f7f", "#2ca02c" if result.passed else "#d62728")
    width = 0.38
    panels = (
        ("Recall", ("images", "clip intervals"),
         ((float(current.image_recall), float(current.clip_recall)),
          (float(candidate.image_recall), float(candidate.clip_recall)))),
        ("False alarms (stills)", ("false alarms",),
         ((current.images.false_alarms,), (candidate.images.false_alarms,))),
        ("False events (clips)", ("false events",), ((current.clips.false_events,), (candidate.clips.false_events,))),
    )
    for ax, (title, groups, values) in zip(axes, panels, strict=False):
        for i, (name, color, vals) in enumerate(zip(names, colors, values, strict=True)):
            xs = [g + (i - 0.5) * width for g in range(len(groups))]
            bars = ax.bar(xs, vals, width, label=name, color=color)
            ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_xticks(range(len(groups)), groups)
        if title != "Recall":  # counts: start at zero, whole numbers, room above a zero bar
            ax.set_ylim(0, max(1, *values[0], *values[1]) * 1.2)
            ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title)
    axes[0].set_ylim(0, 1.15)
    if per_clip:
        files = sorted({c.file for s in (current, candidate) for c in (s.per_clip or [])})
        for i, (name, color, summary) in enumerate(zip(names, colors, (current, candidate), strict=True)):
            events = {c.file: c.false_events for c in (summary.per_clip or [])}
            axes[3].barh([f + (i - 0.5) * width for f in range(len(files))],
                         [events.get(f, 0) for f in files], width, label=name, color=color)
        axes[3].set_yticks(range(len(files)), [Path(f).name for f in files], fontsize=7)
        most = max([c.false_events for s in (current, candidate) for c in (s.per_clip or [])], default=0)
        axes[3].set_xlim(0, max(1, most) * 1.2)  # a row of zeros still reads as zeros
        axes[3].xaxis.get_major_locator().set_params(integer=True)
        axes[3].set_title("False events per clip")
    # one legend for all panels, under them: inside a panel it hid bars and labels
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    verdict = "PASSED" if result.passed else "REFUSED"
    fig.suptitle(f"Gate {verdict}: {candidate.label} vs {current.label}\n{candidate.protocol}", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
