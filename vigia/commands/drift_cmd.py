"""`vigia drift [--recent 7d] [--reference 28d] [--data-dir D] [--json]`: cameras whose score
distributions or alert rate moved (PSI over fixed bins, KS beside it); the metrics go out through
cloud.metrics. Exit status 0 when nothing moved, 1 when some camera is flagged, 2 on bad input."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("drift", help="per camera: recent scores and alert rate against a reference window")
    parser.add_argument("--recent", default="7d", help="recent window, e.g. 7d, 36h")
    parser.add_argument("--reference", default="28d", help="reference window, just before the recent one")
    parser.add_argument("--psi", type=float, default=0.2, help="PSI above which a camera is flagged")
    parser.add_argument("--min-events", type=int, default=30, help="events each window needs to be judged")
    parser.add_argument("--camera", action="append", help="only these cameras (repeatable)")
    parser.add_argument("--data-dir", type=Path, help="embedded data dir (the one `vigia demo --data-dir` uses)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cloud.drift import DriftSettings, parse_duration, run_drift
    from vigia.commands.tune_cmd import _open_store

    settings = DriftSettings(recent=parse_duration(args.recent), reference=parse_duration(args.reference),
                             psi_threshold=args.psi, min_events=args.min_events)
    store = _open_store(args.data_dir)
    _configure_metrics(args.data_dir)
    report = run_drift(store, settings=settings, cameras=args.camera)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report))
    else:
        print(f"drift: recent {report['recent']} against the {report['reference']} before it "
              f"(PSI > {settings.psi_threshold} flags; fewer than {settings.min_events} events: not judged)")
        if not report["cameras"]:
            print("  no events in either window")
        for cam in report["cameras"]:
            parts = []
            for s in cam["series"]:
                parts.append(f"{s['series']} " + (f"PSI {s['psi']:.3f} KS {s['ks']:.3f}" if s["psi"] is not None
                                                  else f"not judged ({s['reference_n']}/{s['recent_n']} events)"))
            rate = cam["alert_rate"]
            parts.append(f"alerts/day {rate['reference_per_day']:.2f} → {rate['recent_per_day']:.2f}")
            print(f"  {cam['camera_id']}: {'FLAGGED' if cam['flagged'] else 'stable'}; " + "; ".join(parts))
            for reason in cam["reasons"]:
                print(f"    {reason}")
        if not report["metrics_emitted"]:
            print("  metrics not emitted (cloud.metrics unavailable); the JSON result holds them")
    return 1 if report["flagged"] else 0


def _configure_metrics(data_dir: Path | None) -> None:
    """Drift metrics go where the cloud's do: `<data dir>/cloud/metrics/cloud.jsonl` on the embedded default,
    EMF on stdout in AWS mode."""
    from cloud.metrics import configure_from_settings
    from cloud.settings import CloudSettings

    configure_from_settings(CloudSettings(data_dir=data_dir / "cloud") if data_dir else CloudSettings())
