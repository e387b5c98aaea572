"""Measure the verifier on labelled data: baseline vs gateway vs gateway-then-verifier ("system").

    python -m cloud.verifier.tune --dataset ../shared/datasets [--clips] [--json out.json]

Images: the gateway's still-image rule (SSD-MobileNetV2 COCO, full frame only, boxes of at least
0.00005 of the frame, candidate when the best person score is >= 0.35) builds each candidate; the system
alerts only when the verifier confirms ("uncertain" goes to human review and counts as not alerted). The
baseline is the same model on the full frame at 0.5, alone.

Clips (`--clips`): windows of each DEV clip sampled at 5 fps become fabricated multi-frame candidates and
go through the verifier alone (the full cascade on clips is measured by the edge evaluation).
Nothing is copied out of the dataset folder; everything is read in place.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from cloud.verifier.settings import VerifierSettings
from cloud.verifier.verifier import Verifier
from contracts import Box, Candidate, new_event_id
from models.detector import Detection, PersonDetector, tile_regions
from models.video import VideoError, VideoReader

GATEWAY_STILL_THRESHOLD = 0.35
GATEWAY_MIN_AREA = 0.00005
GATEWAY_CLIP_DETECT_THRESHOLD = 0.3
BASELINE_THRESHOLD = 0.5
GATEWAY_MODEL = "ssd-mobilenet-v2-coco"
VTEST_SYSTEM_PATH = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


# -- fabricated candidates --------------------------------------------------------------------------
def snapshot_jpeg(frame: np.ndarray, max_side: int = 320) -> bytes:
    """A small JPEG of the best frame, as the gateway attaches (well under the message cap)."""
    scale = min(1.0, max_side / max(frame.shape[:2]))
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def make_candidate(
    frame: np.ndarray, boxes: list[Detection], detector: PersonDetector, *, camera_id: str, source: str,
    threshold: float, start: float = 0.0, end: float = 0.0, best: float = 0.0, reason: str = "",
) -> Candidate:
    height, width = frame.shape[:2]
    now = datetime.now(UTC)
    score = max((d.score for d in boxes), default=0.0)
    return Candidate(
        event_id=new_event_id(), gateway_id="tune-gateway", camera_id=camera_id, source=source,
        started_at=now, ended_at=now + timedelta(seconds=end - start), start_offset_s=start, end_offset_s=end,
        frame_width=width, frame_height=height, best_frame_offset_s=best, snapshot_jpeg=snapshot_jpeg(frame),
        boxes=[Box(x1=max(0.0, d.x1), y1=max(0.0, d.y1), x2=d.x2, y2=d.y2, score=min(1.0, d.score)) for d in boxes],
        tracks=[], score=min(1.0, score), threshold=threshold, model=detector.ref,
        reasons=[reason or f"best person score {score:.2f} >= {threshold:.2f}"],
    )


def gateway_still_boxes(frame: np.ndarray, detector: PersonDetector) -> list[Detection]:
    """The gateway's still-image rule: full frame only, min-area filter, no aspect filter on stills."""
    height, width = frame.shape[:2]
    dets = detector.detect(frame, floor=0.05)
    return [d for d in dets if d.area / (width * height) >= GATEWAY_MIN_AREA]


# -- images -----------------------------------------------------------------------------------------
@dataclass
class ImageRow:
    file: str
    person: bool
    gateway_score: float
    baseline_alert: bool
    gateway_alert: bool
    verdict: str | None  # None when the gateway sent nothing
    verifier_score: float | None
    reasons: list[str] = field(default_factory=list)

    @property
    def system_alert(self) -> bool:
        return self.verdict == "confirmed"


def evaluate_images(
    dataset: Path, verifier: Verifier, gateway: PersonDetector, progress: bool = True
) -> list[ImageRow]:
    labels = json.loads((dataset / "labels.json").read_text())["images"]
    rows: list[ImageRow] = []
    for i, entry in enumerate(labels, 1):
        path = dataset / entry["file"]
        frame = cv2.imread(str(path))
        if frame is None:
            raise FileNotFoundError(f"cannot read {path}")
        boxes = gateway_still_boxes(frame, gateway)
        best = max((d.score for d in boxes), default=0.0)
        sent = [d for d in boxes if d.score >= GATEWAY_STILL_THRESHOLD]
        verdict = None
        if sent:
            candidate = make_candidate(frame, sent, gateway, camera_id="dev-stills", source=entry["file"],
                                       threshold=GATEWAY_STILL_THRESHOLD)
            verdict = verifier.verify(candidate, [(0.0, frame)])
        rows.append(ImageRow(
            file=entry["file"], person=bool(entry["person_present"]), gateway_score=best,
            baseline_alert=best >= BASELINE_THRESHOLD, gateway_alert=bool(sent),
            verdict=verdict.decision if verdict else None, verifier_score=verdict.score if verdict else None,
            reasons=verdict.reasons if verdict else [],
        ))
        if progress and i % 25 == 0:
            print(f"  images: {i}/{len(labels)}", file=sys.stderr, flush=True)
    return rows


def image_summary(rows: list[ImageRow]) -> dict[str, dict[str, int]]:
    pos = [r for r in rows if r.person]
    neg = [r for r in rows if not r.person]
    out = {}
    for name, flag in (("baseline", "baseline_alert"), ("gateway", "gateway_alert"), ("system", "system_alert")):
        out[name] = {"recall": sum(getattr(r, flag) for r in pos), "positives": len(pos),
                     "false_alarms": sum(getattr(r, flag) for r in neg), "negatives": len(neg)}
    out["system"]["uncertain_pos"] = sum(r.verdict == "uncertain" for r in pos)
    out["system"]["uncertain_neg"] = sum(r.verdict == "uncertain" for r in neg)
    return out


# -- clips ------------------------------------------------------------------------------------------
@dataclass
class ClipWindow:
    clip: str
    start: float
    end: float
    expected: str  # "person", "no person" or "mixed"
    verdict: str
    score: float
    frames: int
    ms: float
    reason: str


def sample_clip(path: Path, fps: float = 5.0) -> list[tuple[float, np.ndarray]]:
    """Frames at about `fps` with their real time stamps (tree.avi has irregular ones), read by the one video
    reader the gateway and the verifier share."""
    try:
        with VideoReader(str(path)) as reader:
            return [(frame.ts, frame.image) for frame in reader.frames(fps)]
    except VideoError as exc:
        raise FileNotFoundError(f"cannot open {path}: {exc}") from exc


def clip_gateway_boxes(frame: np.ndarray, gateway: PersonDetector) -> list[Detection]:
    """Gateway-style boxes on the best frame: full frame, then 2x2 tiles when it finds nobody ('auto')."""
    dets = [d for d in gateway.detect(frame, floor=0.05) if d.score >= GATEWAY_CLIP_DETECT_THRESHOLD]
    if not dets:
        height, width = frame.shape[:2]
        tiled = gateway.detect(frame, tile_regions(width, height, 2), floor=0.05)
        dets = [d for d in tiled if d.score >= GATEWAY_CLIP_DETECT_THRESHOLD]
    return dets[:5]


def expected_label(start: float, end: float, intervals: list[list[float]]) -> str:
    overlap = sum(max(0.0, min(end, b) - max(start, a)) for a, b in intervals)
    if overlap <= 0:
        return "no person"
    return "person" if overlap >= (end - start) - 1e-6 else "mixed"


def evaluate_clips(
    dataset: Path, verifier: Verifier, gateway: PersonDetector, window_s: float = 6.0, max_windows: int = 5,
    extra: dict[str, Path] | None = None,
) -> list[ClipWindow]:
    """Each clip cut into windows (at most `max_windows`, spread over the clip); each window one candidate."""
    labels_path = dataset / "videos" / "labels.json"
    videos = json.loads(labels_path.read_text())["videos"] if labels_path.exists() else []
    meta = {e["file"].split("/")[-1]: e for e in videos}
    clips = {
        "vtest.avi": extra.get("vtest.avi") if extra else None,
        "tree.avi": None, "dyntex_flag_571c110.avi": None, "wildcam_cat_night_ir.avi": None, "psu_movecam.avi": None,
        "psu_trees.avi": None, "psu_getout.avi": None, "boats_inflatable.mp4": None,
    }
    rows: list[ClipWindow] = []
    for name, override in clips.items():
        path = override if override is not None and override.exists() else dataset / "videos" / name
        entry = meta.get(name, {})
        intervals = list(entry.get("person_intervals_s") or []) + list(entry.get("partial_body_intervals_s") or [])
        frames = sample_clip(path)
        if not frames:
            continue
        duration = frames[-1][0] + 0.2
        starts = [k * window_s for k in range(int(duration // window_s) or 1)]
        if len(starts) > max_windows:
            starts = [starts[round(i * (len(starts) - 1) / (max_windows - 1))] for i in range(max_windows)]
        for start in starts:
            end = min(start + window_s, duration)
            segment = [(t - start, f) for t, f in frames if start <= t < end]
            if len(segment) < 3:
                continue
            mid_t, mid_frame = segment[len(segment) // 2]
            boxes = clip_gateway_boxes(mid_frame, gateway)
            candidate = make_candidate(
                mid_frame, boxes, gateway, camera_id="dev-clips", source=name, threshold=0.5,
                start=0.0, end=segment[-1][0], best=mid_t, reason="fabricated window candidate",
            )
            verdict = verifier.verify(candidate, segment)
            rows.append(ClipWindow(name, round(start, 2), round(end, 2), expected_label(start, end, intervals),
                                   verdict.decision, round(verdict.score, 3), verdict.frames_examined,
                                   round(verdict.processing_ms, 1), verdict.reasons[0]))
            print(f"  {name} {start:5.1f}-{end:5.1f}s: {verdict.decision}", file=sys.stderr, flush=True)
    return rows


# -- report -----------------------------------------------------------------------------------------
def format_report(rows: list[ImageRow], clip_rows: list[ClipWindow] | None = None) -> str:
    summary = image_summary(rows)
    lines = ["", "images                          recall        false alarms",
             "-----------------------------------------------------------"]
    labels = {"baseline": f"baseline (SSD-MNv2 full >= {BASELINE_THRESHOLD})",
              "gateway": f"gateway  (still rule >= {GATEWAY_STILL_THRESHOLD})",
              "system": "system   (gateway, then verifier)"}
    for key, text in labels.items():
        s = summary[key]
        lines.append(f"{text:34s} {s['recall']:3d}/{s['positives']:<3d}      {s['false_alarms']:3d}/{s['negatives']}")
    s = summary["system"]
    lines.append(f"uncertain (to human review): {s['uncertain_pos']} with person, {s['uncertain_neg']} without")
    lines.append("")
    for row in rows:
        if not row.person and (row.gateway_alert or row.baseline_alert):
            tag = "FALSE ALARM" if row.system_alert else "caught"
            lines.append(f"no person  {row.file:48s} gw {row.gateway_score:.2f} -> {row.verdict or '-':9s} {tag}")
    for row in rows:
        if row.person and not row.system_alert:
            why = row.reasons[1] if len(row.reasons) > 1 else "gateway sent nothing"
            lines.append(f"MISS       {row.file:48s} gw {row.gateway_score:.2f} -> {row.verdict or '-':9s} {why}")
    if clip_rows:
        lines += ["", "clips (verifier alone, fabricated 6 s windows at 5 fps)",
                  "clip                         window        expected   verdict    score  frames  ms"]
        for c in clip_rows:
            lines.append(f"{c.clip:28s} {c.start:5.1f}-{c.end:5.1f}  {c.expected:10s} {c.verdict:10s} "
                         f"{c.score:.2f}  {c.frames:6d}  {c.ms:.0f}")
    return "\n".join(lines)


def plot_scores(rows: list[ImageRow], path: Path, settings: VerifierSettings | None = None) -> None:
    """Verifier scores of the gateway's candidates, person vs no person, with the two decision levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = settings or VerifierSettings()
    sent = [r for r in rows if r.verifier_score is not None]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.linspace(0, 1, 41)
    ax.hist([r.verifier_score for r in sent if r.person], bins=bins, alpha=0.7, label="person")
    ax.hist([r.verifier_score for r in sent if not r.person], bins=bins, alpha=0.9, label="no person")
    for level, name in ((settings.uncertain_threshold, "uncertain"), (settings.confirm_threshold, "confirm")):
        ax.axvline(level, linestyle="--", color="grey")
        ax.text(level, ax.get_ylim()[1] * 0.9, f" {name}", fontsize=8)
    ax.set_xlabel("verifier score (gateway candidates)")
    ax.set_ylabel("images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="the DEV dataset folder (labels.json, images/)")
    parser.add_argument("--clips", action="store_true", help="also run fabricated clip windows (slow)")
    parser.add_argument("--no-images", action="store_true", help="skip the still images")
    parser.add_argument("--json", type=Path, help="write all rows as JSON here")
    parser.add_argument("--plot", type=Path, help="write a PNG of the verifier's score distribution here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    verifier = Verifier(VerifierSettings())
    gateway = verifier.detectors.get(GATEWAY_MODEL) or Verifier(VerifierSettings(models=(GATEWAY_MODEL,))).detectors[
        GATEWAY_MODEL]
    started = time.perf_counter()
    rows = [] if args.no_images else evaluate_images(args.dataset, verifier, gateway)
    clip_rows = evaluate_clips(args.dataset, verifier, gateway, extra={"vtest.avi": VTEST_SYSTEM_PATH}) \
        if args.clips else None
    print(format_report(rows, clip_rows) if rows else format_report([], clip_rows))
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.plot and rows:
        plot_scores(rows, args.plot)
    if args.json:
        args.json.write_text(json.dumps({"images": [asdict(r) | {"system_alert": r.system_alert} for r in rows],
                                         "summary": image_summary(rows) if rows else {},
                                         "clips": [asdict(c) for c in clip_rows or []]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
