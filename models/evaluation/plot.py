"""The report's picture: image PR / threshold sweep with operating points, and per-clip events."""

from __future__ import annotations

from pathlib import Path


def write_plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    sweep = report.get("sweep", {}).get("images", [])
    if sweep:
        thr = [p["threshold"] for p in sweep]
        axes[0].plot(thr, [p["recall"] for p in sweep], label="recall (person images)")
        axes[0].plot(thr, [p["false_alarm_rate"] for p in sweep], label="false-alarm rate (empty images)")
        for name, style in (("baseline", "k--"), ("system", "g:")):
            t = report[name].get("images", {}).get("threshold")
            label = "baseline" if name == "baseline" else f"{report['stage']} (gateway still)"
            if t is not None:
                axes[0].axvline(t, color=style[0], linestyle=style[1:], label=f"{label} threshold {t}")
        axes[0].set_xlabel("person score threshold (single frame)")
        axes[0].set_title("Images: threshold sweep")
        axes[0].legend(fontsize=7)
        axes[1].plot([p["recall"] for p in sweep], [p["precision"] for p in sweep], marker=".")
        for name, marker in (("baseline", "ks"), ("system", "g^")):
            img = report[name].get("images", {})
            if img.get("n_person"):
                tp, fp = img["hits"], img["false_alarms"]
                axes[1].plot(img["recall"], tp / (tp + fp) if tp + fp else 1.0, marker, markersize=9,
                             label=name if name == "baseline" else report["stage"])
        axes[1].set_xlabel("recall")
        axes[1].set_ylabel("precision")
        axes[1].set_title("Images: precision-recall")
        axes[1].legend(fontsize=7)
    clips = report["system"].get("clips", {}).get("per_clip", [])
    if clips:
        names = [Path(c["file"]).stem[:14] for c in clips]
        base = {c["file"]: c for c in report["baseline"]["clips"]["per_clip"]}
        xs = list(range(len(names)))
        for offset, label, rows, colour in ((-0.2, "baseline", [base[c["file"]] for c in clips], "grey"),
                                            (0.2, report["stage"], clips, "green")):
            total = [sum(1 for e in r["events"] if e.get("alert", True)) for r in rows]  # alerts, not candidates
            false = [r["false_events"] for r in rows]
            axes[2].bar([x + offset for x in xs], total, 0.4, color=colour, alpha=0.5, label=f"{label} events")
            axes[2].bar([x + offset for x in xs], false, 0.4, color="red", hatch="//", alpha=0.8,
                        label=f"{label} false events")
        for x, c in zip(xs, clips, strict=True):
            if c["intervals_total"]:
                mark = "✓" if c["intervals_hit"] == c["intervals_total"] else "✗"
                axes[2].text(x, -0.35, mark, ha="center", fontsize=11)
        axes[2].set_ylim(-0.6, max(3, *(len(c["events"]) for c in clips)) + 0.5)
        axes[2].set_xticks(xs, names, rotation=60, fontsize=7)
        axes[2].set_ylabel("alerting events per clip")
        axes[2].set_title("Clips: events; red = false (✓ every person interval hit)")
        axes[2].legend(fontsize=7)
    # Scores depend on the arithmetic (f32 vs bf16 moves them ~1e-2): a plot says which it shows.
    precision = report.get("inference_precision", "not recorded")
    fig.suptitle(f"Vigia evaluation, stage {report['stage']}, inference precision {precision}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
