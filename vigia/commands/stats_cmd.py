"""`vigia stats [--data-dir D] [--since 2h|ISO] [--json]`: what the gateway and the cloud did, per camera,
from the EMF metric lines of the embedded default (`D/**/metrics/*.jsonl`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("stats", help="per-camera summary of the metrics (frames, candidates, verdicts...)")
    parser.add_argument("--data-dir", type=Path, default=Path("var/demo"),
                        help="the data dir of `vigia demo` (or any folder holding metrics/*.jsonl)")
    parser.add_argument("--since", help="only lines newer than this: 30m, 2h, 7d, or an ISO time")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=_stats)


def _stats(args: argparse.Namespace) -> int:
    from cloud.metrics.summary import parse_since, summarise_dir

    since = parse_since(args.since) if args.since else None
    summary = summarise_dir(args.data_dir, since)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    print_summary(summary)
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return " ".join(f"{k}={_fmt(v)}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.1f}"
    return str(value)


COLUMNS = [
    ("camera", lambda r: r["camera_id"]), ("gateway", lambda r: r["gateway_id"]),
    ("frames", lambda r: r["FramesProcessed"]), ("detector", lambda r: r["DetectorCalls"]),
    ("candidates", lambda r: r["Candidates"]), ("suppressed", lambda r: r["Suppressed"]),
    ("dropped", lambda r: r["Dropped"]), ("verified", lambda r: r["CandidatesReceived"]),
    ("verdicts", lambda r: r["Verdicts"]), ("notified", lambda r: r["Notifications"]),
    ("feedback", lambda r: r["feedback"]), ("latency p50/p95 ms",
                                            lambda r: f"{_fmt(r['latency_ms_p50'])}/{_fmt(r['latency_ms_p95'])}"),
]


def print_summary(summary: dict[str, Any], out=None) -> None:
    out = out or sys.stdout
    rows = [[_fmt(get(r)) for _, get in COLUMNS] for r in summary["cameras"]]
    headers = [name for name, _ in COLUMNS]
    title = f"metrics {summary['from'] or '-'} → {summary['to'] or '-'} ({summary['lines']} lines)"
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title, file=out)
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), file=out)
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)), file=out)
    else:
        table = Table(title=title)
        for h in headers:
            table.add_column(h)
        for r in rows:
            table.add_row(*r)
        wide = None if getattr(out, "isatty", lambda: False)() else 220  # pipes and files get every column
        Console(file=out, width=wide).print(table)
    fleet = {k: v for k, v in summary["fleet"].items() if v not in (None, {}, 0.0)}
    if fleet:
        print("fleet: " + ", ".join(f"{k}={_fmt(v)}" for k, v in fleet.items()), file=out)
    if summary["skipped_lines"]:
        print(f"{summary['skipped_lines']} line(s) were not EMF and were skipped", file=out)
