"""`vigia eval --stage edge|system --dataset DIR --out OUT`."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any


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
    learned = parser.add_mutually_exclusive_group()
    learned.add_argument("--learned", type=Path, metavar="HEAD",
                         help="stage system: the verifier judges with this learned head (head.json)")
    learned.add_argument("--learned-cv", type=Path, metavar="TRAINING_SET",
                         help="stage system: train the learned head on this training set (`vigia dataset build`) "
                         "fold by fold and judge each item with the head that never saw its clip or camera view")
    parser.add_argument("--verifier-models", metavar="ID,ID,...",
                        help="stage system: the verifier's ensemble (catalog ids; default: the one the learned "
                        "head was trained on, else the verifier's own)")
    parser.add_argument("--seed", type=int, default=0, help="training seed for --learned-cv")
    parser.add_argument("--augment", type=int, default=2,
                        help="augmented copies per crop for --learned-cv (as `vigia train`)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from models.evaluation.dataset import load_dataset
    from models.evaluation.plot import write_plot
    from vigia.eval_stages import evaluate

    ds = load_dataset(args.dataset)
    if args.only == "images":
        ds.clips = []
    elif args.only == "clips":
        ds.images = []
    if (args.learned or args.learned_cv) and args.stage != "system":
        print("vigia eval: --learned/--learned-cv need --stage system", file=sys.stderr)
        return 2
    verify, on_item, learned_info = None, None, None
    if args.stage == "system":
        try:
            verify, on_item, learned_info = _verifier(args, ds)
        except ValueError as exc:  # an unknown model, or a head trained for another ensemble
            print(f"vigia eval: {exc}", file=sys.stderr)
            return 2
    report = evaluate(ds, args.stage, lambda m: print(m, flush=True), verify, args.config, args.precision,
                      args.inference_precision, on_item)
    if learned_info is not None:
        report["learned"] = learned_info()
    report["summary"] = eval_summary(report, ds, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    # What `vigia gate` compares (--candidate-eval / --current-eval / --set-baseline).
    (args.out / "summary.json").write_text(json.dumps(report["summary"], indent=2))
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
    print(f"report: {args.out / 'report.json'}  plot: {args.out / 'report.png'}  gate summary: "
          f"{args.out / 'summary.json'}")
    return 0


def _verifier(args: argparse.Namespace, ds):
    """The verifier's verify_clip, the per-item hook and a report section for the learned stage (if any)."""
    from cloud.verifier import Verifier
    from cloud.verifier.settings import VerifierSettings, parse_ensemble

    settings = VerifierSettings(**({"models": parse_ensemble(args.verifier_models)} if args.verifier_models else {}))
    if not (args.learned or args.learned_cv):
        return Verifier(settings).verify_clip, None, None
    from cloud.verifier.learned import LearnedStage
    from models.learned.embedder import CropEmbedder
    from vigia.learned_eval import CrossValidatedHeads, learned_summary

    embedder = CropEmbedder()
    if args.learned:
        stage = LearnedStage.from_file(args.learned, embedder=embedder)
        return (Verifier(_head_ensemble(settings, stage.head, args), learned=stage).verify_clip, None,
                lambda: learned_summary(None, args.learned))
    cv = CrossValidatedHeads.train_on(args.learned_cv, embedder, seed=args.seed, augment=args.augment,
                             progress=lambda m: print(m, flush=True))
    stage = LearnedStage(cv.full, embedder)
    verifier = Verifier(_head_ensemble(settings, cv.full, args), learned=stage)

    def on_item(item) -> None:
        head = cv.head_for(ds, item)
        if head is not None:
            stage.use(head)
        verifier.learned = stage if head is not None else None

    return verifier.verify_clip, on_item, lambda: learned_summary(cv, None)


def _head_ensemble(settings, head, args: argparse.Namespace):
    """As in a deployment: without --verifier-models the verifier runs the ensemble the head was trained on."""
    return settings if args.verifier_models else settings.model_copy(update={"models": head.ensemble})


def labels_sha256(ds) -> str:
    """Identifies the evaluated footage: the labels files read (they carry every file's sha256)."""
    digest = hashlib.sha256()
    for name in ("labels.json", "videos/labels.json"):
        path = ds.root / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def eval_summary(report: dict[str, Any], ds, args: argparse.Namespace) -> dict[str, Any]:
    """The counts the gate compares (models.learned.gate.EvalSummary)."""
    system = report["system"]
    images, clips = system["images"], system["clips"]
    if args.learned_cv:
        label = f"learned head, leave-clips-out on {args.learned_cv.name}"
    elif args.learned:
        label = f"learned head {args.learned}"
    else:
        label = "rules" if args.stage == "system" else "edge"
    return {
        "label": label, "dataset_sha256": labels_sha256(ds),
        "protocol": f"vigia eval --stage {args.stage}: gateway then verifier on every labelled item; a learned "
                    "head never judges an item of a clip or camera view it was trained on",
        "images": {"hits": images.get("hits", 0), "n_person": images.get("n_person", 0),
                   "false_alarms": images.get("false_alarms", 0), "n_empty": images.get("n_empty", 0)},
        "clips": {k: clips[k] for k in ("intervals_hit", "intervals_total", "false_events")},
        "per_clip": [{"file": c["file"], "intervals_hit": c["intervals_hit"], "intervals_total": c["intervals_total"],
                      "false_events": c["false_events"]} for c in clips["per_clip"]],
    }
