"""`vigia tune`: a camera's threshold from its labeled events, or from a labeled dataset folder.

    vigia tune --camera ID|--all [--target 0.98] [--min-people 30] [--apply] [--plot out.png] [--data-dir D]
    vigia tune --dataset ../shared/datasets [--stills-only] [--folds 5] [--plot out.png] [--json]

Exit status: 0 when the report ran (a refusal to change anything is a normal answer, stated in the output);
1 when --apply was asked and some camera had nothing valid to apply; 2 on bad input (unknown camera, no
store, a refused shadow write).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vigia.commands.config_cmd import add_shadow_backend_options


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tune", help="per-camera threshold from labeled events (recall lower bound kept "
                                         "at a target), or from a labeled dataset with held-out reporting")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--camera", action="append", default=[], help="camera id (repeatable)")
    which.add_argument("--all", action="store_true", help="every camera with labeled events")
    which.add_argument("--dataset", type=Path, help="a labeled folder (labels.json, videos/labels.json), read "
                                                    "in place and scored by the gateway")
    parser.add_argument("--target", type=float, default=0.98, help="person recall to keep (lower bound)")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="one-sided confidence of the Clopper-Pearson lower bound")
    parser.add_argument("--min-people", type=int, default=30, help="labeled people needed before any change")
    parser.add_argument("--plot", type=Path, help="PNG of the curve (one file per camera: NAME-CAMERA.png)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--data-dir", type=Path, help="embedded data dir (the one `vigia demo --data-dir` uses); "
                                                      "default: the VIGIA_* cloud settings (SQLite or DynamoDB)")
    parser.add_argument("--apply", action="store_true", help="write a valid recommendation to the shadow")
    add_shadow_backend_options(parser, client_id="vigia-tune-cli", thing_required=False,
                               thing_help="gateway thing name for --apply (default: the events' gateway)")
    parser.add_argument("--stills-only", action="store_true", help="dataset mode: images only (no clips)")
    parser.add_argument("--max-images", type=int, help="dataset mode: a subset, half with people")
    parser.add_argument("--max-clips", type=int, help="dataset mode: the first N clips only")
    parser.add_argument("--folds", type=int, default=5, help="dataset mode: k of the k-fold by clip/image")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cloud.tuning import TuningSettings

    settings = TuningSettings(target=args.target, min_people=args.min_people, confidence=args.confidence)
    if args.dataset is not None:
        if args.apply:
            raise ValueError("--apply works on a camera's events, not on a dataset")
        return _dataset(args, settings)
    return _cameras(args, settings)


def _say(args: argparse.Namespace, text: str) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def _plot_path(base: Path, name: str, many: bool) -> Path:
    return base.with_name(f"{base.stem}-{name}{base.suffix or '.png'}") if many else base


# --- a camera's labeled events -------------------------------------------------------------------------
def _open_store(data_dir: Path | None) -> Any:
    if data_dir is not None:
        path = data_dir / "cloud" / "events.sqlite3"
        if not path.exists():  # never create an empty store by asking about one
            raise FileNotFoundError(f"no event store at {path}: is {data_dir} a `vigia demo --data-dir` folder?")
        from cloud.events.sqlite import SqliteEventStore

        return SqliteEventStore(path)
    from cloud.drift import open_event_store
    from cloud.settings import CloudSettings

    settings = CloudSettings()
    if settings.store == "local" and not (settings.data_dir / "events.sqlite3").exists():
        raise FileNotFoundError(f"no event store at {settings.data_dir / 'events.sqlite3'}; give --data-dir")
    return open_event_store(settings)


def _cameras(args: argparse.Namespace, settings: Any) -> int:
    from cloud.tuning.from_events import current_threshold, labeled_cameras, labeled_scores
    from cloud.tuning.threshold import select_threshold

    store = _open_store(args.data_dir)
    cameras = labeled_cameras(store) if args.all else list(dict.fromkeys(args.camera))
    if not cameras:
        raise ValueError("no camera has person / not-person labels yet (vigia feedback ID person|not-person)")
    reports, refused = [], 0
    for camera in cameras:
        try:
            current, gateway = current_threshold(store, camera)
        except LookupError as exc:
            raise ValueError(str(exc)) from exc
        result = select_threshold(labeled_scores(store, camera), current, settings, camera_id=camera)
        entry: dict[str, Any] = {"result": result.to_dict(with_curve=args.json), "applied": None}
        if args.plot:
            from cloud.tuning.plot import plot_curve

            entry["plot"] = str(plot_curve(result, _plot_path(args.plot, camera, len(cameras) > 1)))
        if args.apply:
            if result.valid:
                entry["applied"] = _apply(args, args.thing or gateway, result)
            else:
                refused += 1
        reports.append(entry)
        if not args.json:
            print(format_result(result, store_mode=True))
            if entry.get("plot"):
                print(f"  plot: {entry['plot']}")
            if entry["applied"]:
                print(f"  applied: {entry['applied']['thing']} shadow version {entry['applied']['version']}")
            elif args.apply:
                print("  not applied: the recommendation is not valid (see above)")
            elif result.valid:
                print("  dry run: --apply writes it to the camera's shadow")
    if args.json:
        print(json.dumps({"cameras": reports}, default=str))
    return 1 if args.apply and refused else 0


def _apply(args: argparse.Namespace, thing: str | None, result: Any) -> dict[str, Any]:
    from cloud.tuning.apply import apply_recommendation
    from vigia.commands.config_cmd import _backend  # the same backends and options as `vigia config`

    if not thing:
        raise ValueError(f"camera {result.camera_id}: no gateway known; give --thing")
    backend = _backend(args)
    try:
        accepted = apply_recommendation(backend, thing, result)
    finally:
        if hasattr(backend, "close"):
            backend.close()
    return {"thing": thing, "version": accepted.get("version"),
            "desired": (accepted.get("state") or {}).get("desired")}


def format_result(result: Any, store_mode: bool, name: str = "threshold") -> str:
    b, a = result.before, result.after
    lines = [f"{result.camera_id}: {result.status}: {result.message}",
             f"  labeled: {result.people} people, {result.not_people} not-person; judged from {name} "
             f"{result.floor:.2f} up"]
    head = f"  {'':8}{name:>16}  {'false alerts':>12}  {'people missed':>14}  {'recall':>6}  lower bound"
    lines.append(head)
    for label, p in (("before", b), ("after", a)):
        if p is None:
            lines.append(f"  {label:8}{'(no change)':>16}")
            continue
        alerts = f"{p.false_alerts}" + (f" ({p.false_alerts_notified} notified)" if store_mode else "")
        lines.append(f"  {label:8}{p.threshold:>16.2f}  {alerts:>12}  {p.people_missed:>8}/{result.people:<5}"
                     f"  {p.recall:6.3f}  {p.recall_lower:.3f}")
    if store_mode:
        lines.append(f"  recall is among the people the gateway sent: people scoring below {result.floor:.2f} "
                     "never reached the store, so raising the threshold is judged honestly but lowering it "
                     "below that is not proposed")
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines)


# --- a labeled dataset -----------------------------------------------------------------------------------
def _dataset(args: argparse.Namespace, settings: Any) -> int:
    from models.evaluation.dataset import load_dataset
    from vigia.tune_dataset import score_dataset

    if args.folds < 2:
        raise ValueError(f"--folds must be at least 2, got {args.folds}")
    ds = load_dataset(args.dataset)
    scores = score_dataset(ds, lambda m: _say(args, m), stills_only=args.stills_only,
                           max_images=args.max_images, max_clips=args.max_clips)
    report, results = dataset_report(scores, settings, args.folds)
    if args.plot:
        from cloud.tuning.plot import plot_curve

        for part, result in results.items():
            report["parts"][part]["plot"] = str(plot_curve(result, _plot_path(args.plot, part, True),
                                                           parameter=report["parts"][part]["parameter"]))
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"dataset {args.dataset} (read in place), scored by the gateway with its thresholds at their floor")
    for part, entry in report["parts"].items():
        print(format_result(results[part], store_mode=False, name=entry["parameter"]))
        print("  " + held_out_line(part, entry["cross_validation"]))
        if entry.get("plot"):
            print(f"  plot: {entry['plot']}")
    return 0


def held_out_line(part: str, cv: dict[str, Any]) -> str:
    unit = "clip" if part == "clips" else "image (frames of one video together)"
    return (f"held out, {cv['folds']}-fold by {unit} over {cv['groups']} groups (each fold's threshold chosen on "
            f"the other folds, counted on its own): false alerts {cv['before']['false_alerts']} → "
            f"{cv['after']['false_alerts']}, people missed {cv['before']['people_missed']} → "
            f"{cv['after']['people_missed']} of {cv['before']['people']}; fold thresholds {cv['thresholds']} "
            "(None: that fold refused to change)")


def dataset_report(scores: Any, settings: Any, folds: int = 5) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tuning on all the data (the recommendation) and k-fold by group (the honest before/after).
    Returns the JSON-ready report and the TuningResult of each part (stills, clips)."""
    from cloud.tuning.threshold import cross_validate, select_threshold

    parts: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for part, parameter, samples, current, floor in (
            ("stills", "still_threshold", scores.stills, scores.current.still_threshold, scores.still_floor),
            ("clips", "threshold", scores.clips, scores.current.threshold, scores.clip_floor)):
        if not samples:
            continue
        result = select_threshold(samples, current, settings, camera_id=f"dataset {part}", floor=floor)
        cv = cross_validate(samples, current, settings, folds=folds, floor=floor)
        results[part] = result
        parts[part] = {"parameter": parameter, "result": result.to_dict(with_curve=False),
                       "cross_validation": cv.to_dict()}
    report = {"parts": parts, "target": settings.target, "confidence": settings.confidence,
              "min_people": settings.min_people, "clips_scored": scores.clips_scored,
              "images_scored": len(scores.stills)}
    return report, results
