"""`vigia train`: the learned verification head from a training set, with leave-clips-out cross-validation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train the learned verification head on a training set")
    parser.add_argument("--dataset", type=Path, required=True, help="a training set (`vigia dataset build --out`)")
    parser.add_argument("--out", type=Path, required=True, help="writes head.json and training-report.json here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", type=int, default=2, help="augmented copies of each crop added to training")
    parser.add_argument("--l2", type=float, default=0.3, help="weight decay on the standardised features")
    parser.add_argument("--threshold", type=float, default=0.5, help="P(person) the cross-validation counts at")
    parser.add_argument("--register", action="store_true", help="add the head to the model registry as a candidate")
    parser.add_argument("--registry", type=Path, help="registry folder (default VIGIA_REGISTRY_DIR / .cache/registry)")
    parser.add_argument("--eval-report", type=Path,
                        help="report.json of `vigia eval --stage system --learned-cv` with this training set, seed "
                        "and augmentation: stored as the version's evaluation, which `vigia gate` compares")
    parser.add_argument("--bump", choices=["major", "minor", "patch"], default="minor")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from models.learned.embedder import CropEmbedder
    from models.learned.head import TrainConfig
    from models.learned.training import load_training_set, train

    try:
        ts = load_training_set(args.dataset)
    except (FileNotFoundError, ValueError) as exc:
        print(f"vigia train: {exc}", file=sys.stderr)
        return 2
    summary = None
    if args.eval_report is not None:
        summary = _eval_summary(args, ts.samples_sha256)
        if summary is None:
            return 2
    config = TrainConfig(l2=args.l2, threshold=args.threshold)
    print(f"training set {args.dataset}: {len(ts.rows)} samples, data {ts.samples_sha256[:12]}, seed {args.seed}",
          flush=True)
    trained = train(ts, CropEmbedder(), config=config, seed=args.seed, augment=args.augment,
                    progress=lambda m: print(m, flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    head_path = args.out / "head.json"
    sha = trained.head.save(head_path)
    report = {
        "head": str(head_path), "head_sha256": sha, "dataset": str(args.dataset),
        "dataset_sha256": ts.samples_sha256, "seed": args.seed, "augment": args.augment, "config": config.as_dict(),
        "embedder": trained.head.embedder, "cross_validation": trained.metrics,
        "reproduce": f"vigia train --dataset {args.dataset} --out OUT --seed {args.seed} --augment {args.augment} "
                     f"--l2 {args.l2} --threshold {args.threshold}",
    }
    (args.out / "training-report.json").write_text(json.dumps(report, indent=2))
    print(f"head: {head_path} (sha256 {sha[:12]})")
    if args.register:
        from models.learned.registry import Registry

        registry = Registry(args.registry) if args.registry else Registry.default()
        metrics = {"cv": trained.metrics["overall"]} | ({"eval": summary} if summary else {})
        entry = registry.register(head_path, dataset_sha256=ts.samples_sha256, metrics=metrics, seed=args.seed,
                                  config=config.as_dict() | {"augment": args.augment}, bump=args.bump,
                                  notes=f"trained on {args.dataset.name}")
        print(f"registered version {entry.version} (parent {entry.parent}) as a candidate; next: vigia gate "
              f"--candidate {entry.version}")
    return 0


def _eval_summary(args: argparse.Namespace, samples_sha256: str) -> dict | None:
    try:
        report = json.loads(args.eval_report.read_text())
        learned = report["learned"]
        summary = report["summary"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"vigia train: --eval-report {args.eval_report}: not a `vigia eval --learned-cv` report ({exc})",
              file=sys.stderr)
        return None
    wanted = f"seed {args.seed}, {args.augment} augmented copies per crop"
    if learned.get("training_set") != samples_sha256 or wanted not in learned.get("protocol", ""):
        print(f"vigia train: --eval-report {args.eval_report} was run on training set "
              f"{str(learned.get('training_set'))[:12]} ({learned.get('protocol')}), not on this one "
              f"({samples_sha256[:12]}, {wanted})", file=sys.stderr)
        return None
    return summary
