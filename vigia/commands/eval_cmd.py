"""`vigia eval --stage edge|system --dataset DIR --out OUT`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate a stage against the baseline on a labelled set")
    parser.add_argument("--stage", choices=["edge", "system"], default="edge")
    parser.add_argument("--dataset", type=Path, required=True, help="folder with labels.json / videos/labels.json")
    parser.add_argument("--out", type=Path, required=True, help="writes report.json and report.png here")
    parser.add_argument("--config", type=Path, help="GatewayConfig JSON for the gateway pass")
    parser.add_argument("--only", choices=["images", "clips"], help="evaluate one half only")
    parser.add_argument("--precision", choices=["FP32", "INT8"], default="FP32", help="the gateway model's precision")
    parser.add_argument("--inference-precision", choices=["f32", "bf16", "f16"], default="f32",
                        help="arithmetic of the gateway and baseline models (the verifier's is its own setting); "
                        "recorded in the report")
    parser.set_defaults(func=_run)


def _verify_fn():
    from cloud.verifier import Verifier

    verifier = Verifier()
    return verifier.verify_clip


def _run(args: argparse.Namespace) -> int:
    from models.evaluation.dataset import load_dataset
    from models.evaluation.plot import write_plot
    from vigia.eval_stages import evaluate

    ds = load_dataset(args.dataset)
    if args.only == "images":
        ds.clips = []
    elif args.only == "clips":
        ds.images = []
    verify = _verify_fn() if args.stage == "system" else None
    report = evaluate(ds, args.stage, lambda m: print(m, flush=True), verify, args.config, args.precision,
                      args.inference_precision)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    write_plot(report, args.out / "report.png")
    for name in ("baseline", "system"):
        part = report[name]
        img, clips = part["images"], part["clips"]
        label = name if name == "baseline" else args.stage
        print(f"{label:9s} images recall {img.get('recall')} ({img.get('hits')}/{img.get('n_person')}), "
              f"false alarms {img.get('false_alarms')}/{img.get('n_empty')}; clips interval recall "
              f"{clips['interval_recall']}, false events {clips['false_events']}; "
              f"detector calls {part['detector_calls']} / frames {part['frames_sampled']}")
    print(f"inference precision {report['inference_precision']} (the model entries record what each ran in)")
    print(f"report: {args.out / 'report.json'}  plot: {args.out / 'report.png'}")
    return 0
