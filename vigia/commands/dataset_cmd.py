"""`vigia dataset build` (training crops from labelled folders and events) and `vigia dataset sheet` (contact sheet).

The builder lives in models.training (it takes the miner as a parameter); this command composes it with the
verifier's detector ensemble (cloud.verifier.learned.make_miner). Bad input: one stderr line, exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("dataset", help="build the learned stage's training set (crops, manifest, folds)")
    dsub = parser.add_subparsers(dest="dataset_command", required=True)
    build = dsub.add_parser("build", help="person and hard-negative crops from labelled folders and events")
    build.add_argument("--labels", type=Path, action="append", default=[], metavar="DIR",
                       help="a labelled folder in the DEV set's format (labels.json, videos/labels.json); repeatable")
    build.add_argument("--feedback", type=Path, metavar="FILE",
                       help="labelled events as `vigia events list --json` prints them")
    build.add_argument("--feedback-media", type=Path, metavar="DIR",
                       help="folder the feedback file's clip/snapshot keys are relative to (default: its folder)")
    build.add_argument("--review-manifest", type=Path, metavar="FILE",
                       help="a review set's manifest.json or manifest.csv (with labels filled in)")
    build.add_argument("--out", type=Path, required=True,
                       help="output folder, not in the repository (e.g. .cache/datasets/NAME); its crops/ is rewritten")
    build.add_argument("--sample-fps", type=float, default=2.0, help="clip frames mined per second (default 2)")
    build.add_argument("--negative-ratio", type=float, default=3.0, help="negatives per person (default 3)")
    build.add_argument("--max-per-group", type=int, default=300,
                       help="negatives kept per clip/camera group at most (default 300)")
    build.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--interval-positives", choices=("top1", "none"), default="top1",
                       help="frames inside a person interval without boxes: top region as a weak person, or none")
    build.add_argument("--clip-box-negatives", action="store_true",
                       help="also take negatives from low-IoU regions of clip frames with boxes (their ground truth "
                            "may miss people; off by default)")
    build.add_argument("--contact-sheet", action="store_true", help="also write contact_sheet.png into OUT")
    build.add_argument("--verifier-models", metavar="ID,ID,...",
                       help="the verifier ensemble that mines regions (catalog ids; default: the verifier's)")
    build.set_defaults(func=_build)
    sheet = dsub.add_parser("sheet", help="contact sheet of a built dataset: crops and augmented versions")
    sheet.add_argument("out", type=Path, metavar="OUT", help="a folder `vigia dataset build` wrote")
    sheet.add_argument("--rows", type=int, default=12)
    sheet.add_argument("--augmented", type=int, default=6, help="augmented versions per row (default 6)")
    sheet.add_argument("--seed", type=int, default=0)
    sheet.set_defaults(func=_sheet)


def _fail(command: str, message: str) -> int:
    log.error("dataset command failed", extra={"command": command, "error": message})
    print(f"vigia dataset {command}: error: {message}", file=sys.stderr)
    return 2


def _build(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from cloud.verifier.settings import VerifierSettings, parse_ensemble
    from contracts.errors import describe_validation_error
    from models.training.build import BuildSettings, DatasetBuilder, summary_lines
    from models.training.labeled_events import read_feedback, read_review_manifest

    if not (args.labels or args.feedback or args.review_manifest):
        return _fail("build", "give at least one of --labels, --feedback, --review-manifest")
    try:
        settings = BuildSettings(sample_fps=args.sample_fps, negative_ratio=args.negative_ratio,
                                 max_per_group=args.max_per_group, folds=args.folds, seed=args.seed,
                                 interval_positives=args.interval_positives,
                                 clip_box_negatives=args.clip_box_negatives,
                                 **({"verifier_models": parse_ensemble(args.verifier_models)}
                                    if args.verifier_models else {}))
        verifier_settings = VerifierSettings(models=settings.verifier_models)
    except (ValidationError, ValueError) as exc:
        message = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        return _fail("build", message)
    for path in args.labels:
        if not path.is_dir():
            return _fail("build", f"--labels {path}: no such folder")
    for flag, path in (("--feedback", args.feedback), ("--review-manifest", args.review_manifest)):
        if path is not None and not path.is_file():
            return _fail("build", f"{flag} {path}: no such file")
    try:
        feedback = read_feedback(args.feedback, args.feedback_media) if args.feedback else None
        review = read_review_manifest(args.review_manifest) if args.review_manifest else None
    except (ValueError, OSError) as exc:
        return _fail("build", str(exc))
    from cloud.verifier.learned import make_miner

    miner = make_miner(verifier_settings)
    builder = DatasetBuilder(args.out, miner, settings)
    try:
        for path in args.labels:
            print(f"mining {path} ...", file=sys.stderr)
            builder.add_labels_root(path)
        if feedback is not None:
            builder.add_events(feedback[0], "feedback", args.feedback, feedback[1])
        if review is not None:
            builder.add_events(review[0], "review", args.review_manifest, review[1])
    except (ValueError, FileNotFoundError) as exc:
        return _fail("build", str(exc))
    report = builder.finish()
    print("\n".join(summary_lines(report)))
    if args.contact_sheet:
        from models.training.contact_sheet import write_dataset_sheet

        print(f"contact sheet: {write_dataset_sheet(args.out, seed=args.seed)}")
    print(f"written to {args.out}")
    return 0


def _sheet(args: argparse.Namespace) -> int:
    from models.training.contact_sheet import write_dataset_sheet

    if not (args.out / "samples.jsonl").is_file():
        return _fail("sheet", f"{args.out}: no samples.jsonl (run `vigia dataset build` first)")
    if not 1 <= args.rows <= 200 or not 1 <= args.augmented <= 20:
        return _fail("sheet", "--rows 1..200 and --augmented 1..20")
    print(write_dataset_sheet(args.out, rows=args.rows, augmented=args.augmented, seed=args.seed))
    return 0
