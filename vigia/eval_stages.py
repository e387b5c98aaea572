"""`vigia eval`: the baseline customers have today beside the gateway pass (and the whole cascade).

Lives with the CLI because it composes edge_agent and cloud, which never import each other.
Baseline: SSD-MobileNetV2 COCO, threshold 0.5, an alert on any single frame, on the same sampled frames.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from contracts import Candidate, Verdict
from models.evaluation.dataset import ClipItem, Dataset, ImageItem
from models.evaluation.metrics import image_summary, merge_alarm_frames, pr_curve, score_clip

log = logging.getLogger("vigia.eval")

BASELINE_MODEL = "ssd-mobilenet-v2-coco"
BASELINE_THRESHOLD = 0.5
BASELINE_SAMPLE_FPS = 5.0
BASELINE_EVENT_GAP_S = 3.0

Verify = Callable[[Candidate, Path], Verdict]
Progress = Callable[[str], None]
OnItem = Callable[[ImageItem | ClipItem], None]


def _detector(model_id: str, mode: str = "throughput", precision: str = "FP32", inference_precision: str = "f32"):
    from models.detector import PersonDetector
    from models.prepare import prepare

    model_dir, _ = prepare(model_id, precision, progress=lambda m: log.info(m))
    return PersonDetector(model_dir, mode=mode, precision=inference_precision)  # type: ignore[arg-type]


def run_baseline(ds: Dataset, progress: Progress, inference_precision: str = "f32") -> tuple[dict, list[float]]:
    from edge_agent.sources import SourceError, open_clip

    det = _detector(BASELINE_MODEL, "latency", inference_precision=inference_precision)
    alerts, truth, scores = {}, {}, []
    for i, item in enumerate(ds.images):
        image = cv2.imread(str(item.path))
        if image is None:
            raise ValueError(f"{item.path}: unreadable image")
        best = max((d.score for d in det.detect(image)), default=0.0)
        scores.append(best)
        key = str(item.path.relative_to(ds.root))
        alerts[key], truth[key] = best >= BASELINE_THRESHOLD, item.person
        if i % 25 == 0:
            progress(f"baseline: image {i + 1}/{len(ds.images)}")
    images = image_summary(alerts, truth) | {"threshold": BASELINE_THRESHOLD}
    per_clip, frames = [], 0
    for item in ds.clips:
        progress(f"baseline: clip {item.path.name}")
        alarm_times = []
        try:
            for frame in open_clip(str(item.path)).frames(BASELINE_SAMPLE_FPS):
                frames += 1
                if any(d.score >= BASELINE_THRESHOLD for d in det.detect(frame.image)):
                    alarm_times.append(frame.ts)
        except SourceError as exc:
            log.error("clip unreadable", extra={"clip": str(item.path), "error": str(exc)})
        events = merge_alarm_frames(alarm_times, BASELINE_EVENT_GAP_S)
        per_clip.append(_clip_entry(ds, item, events))
    calls = det.calls
    return {"images": images, "clips": _clips_summary(per_clip), "detector_calls": calls,
            "frames_sampled": frames + len(ds.images),
            "model": det.ref.model_dump(mode="json"),
            "config": {"model": BASELINE_MODEL, "threshold": BASELINE_THRESHOLD, "sample_fps": BASELINE_SAMPLE_FPS,
                       "rule": "alert on any single frame; alarms closer than 3 s merge into one event"}}, scores


def run_cascade(ds: Dataset, progress: Progress, verify: Verify | None = None, config_path: Path | None = None,
                work_dir: Path | None = None, precision: str = "FP32", inference_precision: str = "f32",
                on_item: OnItem | None = None) -> dict:
    """The gateway pass (stage edge) or gateway then verifier (stage system, when `verify` is given).

    `on_item` is told each item before its candidates are verified (leave-clips-out evaluation swaps the
    learned head there).
    """
    from edge_agent.agent import EdgeAgent
    from edge_agent.config_provider import StaticConfig
    from edge_agent.settings import AgentSettings

    work = Path(work_dir or tempfile.mkdtemp(prefix="vigia-eval-"))
    settings = AgentSettings(data_dir=work / "edge", precision=precision)  # type: ignore[arg-type]
    config = StaticConfig.from_file(config_path) if config_path else StaticConfig()
    detector = _detector(settings.model_id, precision=precision, inference_precision=inference_precision)
    agent = EdgeAgent(settings, config, detector)
    verified: dict[str, Verdict] = {}

    def decide(candidate: Candidate) -> bool:
        if verify is None:
            return True
        assert candidate.clip is not None
        verdict = verify(candidate, settings.clips_dir / candidate.clip.uri)
        verified[candidate.event_id] = verdict
        return verdict.decision == "confirmed"

    alerts, truth, frames, calls = {}, {}, 0, 0
    still_details: dict[str, list[dict]] = {}
    for i, item in enumerate(ds.images):
        image = cv2.imread(str(item.path))
        if image is None:
            raise ValueError(f"{item.path}: unreadable image")
        if on_item is not None:
            on_item(item)
        report = agent.process_image(image, "eval-images", item.path.name)
        calls += report.detector_calls
        frames += 1
        key = str(item.path.relative_to(ds.root))
        kept = [decide(c) for c in report.candidates]  # every candidate judged, as a gateway would send each
        alerts[key] = any(kept)
        truth[key] = item.person
        still_details[key] = [_candidate_detail(c, verified.get(c.event_id), k)
                              for c, k in zip(report.candidates, kept, strict=True)]
        if i % 25 == 0:
            progress(f"{'system' if verify else 'edge'}: image {i + 1}/{len(ds.images)}")
    images = image_summary(alerts, truth) | {"threshold": config.for_camera("eval-images").still_threshold}
    # Why each miss and false alarm happened: what the gateway sent (nothing, or candidates) and the verdicts.
    images["errors"] = {key: still_details[key] for key in images["missed_files"] + images["false_alarm_files"]}
    per_clip, gated = [], []
    for item in ds.clips:
        progress(f"{'system' if verify else 'edge'}: clip {item.path.name}")
        started = time.perf_counter()
        if on_item is not None:
            on_item(item)
        report = agent.process_clip(str(item.path), item.path.stem)
        events, details = [], []
        for c in report.candidates:
            kept = decide(c)
            details.append({"event_id": c.event_id, "start_s": c.start_offset_s, "end_s": c.end_offset_s}
                           | _candidate_detail(c, verified.get(c.event_id), kept))
            if kept:
                events.append((c.start_offset_s, c.end_offset_s))
        entry = _clip_entry(ds, item, events) | {"events": details, "frames_sampled": report.frames_sampled,
                                                 "detector_frames": report.detector_frames,
                                                 "seconds": round(time.perf_counter() - started, 2)}
        if report.error:
            entry["error"] = report.error
        per_clip.append(entry)
        frames += report.frames_sampled
        calls += report.detector_calls
        gated.append((report.frames_sampled, report.detector_frames))
    out = {"images": images, "clips": _clips_summary(per_clip), "detector_calls": calls, "frames_sampled": frames,
           "model": detector.ref.model_dump(mode="json"),
           "motion_gate": {"clip_frames_sampled": sum(a for a, _ in gated),
                           "clip_frames_detected": sum(b for _, b in gated)},
           "config": config.for_camera("default").model_dump(mode="json")}
    if verify is not None:
        out["verifier"] = {"candidates": len(verified),
                           "decisions": {d: sum(1 for v in verified.values() if v.decision == d)
                                         for d in ("confirmed", "rejected", "uncertain")},
                           "frames_examined": sum(v.frames_examined for v in verified.values()),
                           "models": sorted({f"{m.model_id}@{m.version}" for v in verified.values()
                                             for m in v.models}),
                           "inference_precisions": sorted({m.inference_precision or "unreported"
                                                           for v in verified.values() for m in v.models})}
    return out


def _candidate_detail(candidate: Candidate, verdict: Verdict | None, alert: bool) -> dict:
    return {"edge_score": candidate.score, "alert": alert,
            "verdict": verdict.decision if verdict else None, "verifier_score": verdict.score if verdict else None,
            "reasons": (verdict.reasons if verdict else candidate.reasons)[:3]}


def _clip_entry(ds: Dataset, item, events: list[tuple[float, float]]) -> dict:
    scored = score_clip(events, item.person_intervals, item.ignore_intervals)
    return {"file": str(item.path.relative_to(ds.root)), **scored,
            "events": [{"start_s": round(a, 2), "end_s": round(b, 2)} for a, b in events]}


def _clips_summary(per_clip: list[dict]) -> dict:
    total = sum(c["intervals_total"] for c in per_clip)
    hit = sum(c["intervals_hit"] for c in per_clip)
    return {"interval_recall": round(hit / total, 4) if total else 0.0, "intervals_hit": hit, "intervals_total": total,
            "false_events": sum(c["false_events"] for c in per_clip), "per_clip": per_clip}


def evaluate(ds: Dataset, stage: str, progress: Progress, verify: Verify | None = None,
             config_path: Path | None = None, precision: str = "FP32", inference_precision: str = "f32",
             on_item: OnItem | None = None) -> dict:
    """Scores, and so every figure here, hold for the inference precision recorded in the report (f32 default)."""
    baseline, scores = run_baseline(ds, progress, inference_precision)
    system = run_cascade(ds, progress, verify if stage == "system" else None, config_path, precision=precision,
                         inference_precision=inference_precision, on_item=on_item)
    thresholds = [round(0.05 * i, 2) for i in range(1, 20)]
    sweep = pr_curve(scores, [i.person for i in ds.images], thresholds) if ds.images else []
    return {"stage": stage, "dataset": str(ds.root), "inference_precision": inference_precision,
            "system": system, "baseline": baseline,
            "sweep": {"images": sweep, "note": "single-frame max person score of SSD-MobileNetV2, full frame"}}
