"""Verifier throughput on CPU over real vtest.avi segments: candidates/s and frames/s. Prints JSON.

    python benchmarks/bench_verifier.py [--segments 4] [--segment-s 4] [--max-frames 8] [--nanodet]

Each segment is a few seconds of OpenCV's vtest.avi (PETS 2009) sampled at 5 fps, with a gateway-style
candidate on its middle frame. Configurations are measured side by side in one run (ratios, not
absolute claims: the machine is shared). No assertions.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from cloud.verifier import Verifier, VerifierSettings
from cloud.verifier.tune import VTEST_SYSTEM_PATH, make_candidate, sample_clip
from cloud.verifier.verifier import load_detectors

GATEWAY = "ssd-mobilenet-v2-coco"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=VTEST_SYSTEM_PATH)
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--segment-s", type=float, default=4.0)
    parser.add_argument("--max-frames", type=int, default=8)
    parser.add_argument("--nanodet", action="store_true",
                        help="also the three-model ensemble (+ nanodet-m, prepared with `vigia models prepare`)")
    args = parser.parse_args()

    frames = sample_clip(args.clip, fps=5.0)
    base = Verifier(VerifierSettings(max_frames=args.max_frames))
    gateway = base.detectors[GATEWAY]
    segments = []
    for k in range(args.segments):
        start = k * args.segment_s * 2
        seg = [(t - start, f) for t, f in frames if start <= t < start + args.segment_s]
        mid_t, mid = seg[len(seg) // 2]
        boxes = [d for d in gateway.detect(mid) if d.score >= 0.5][:3]
        segments.append((make_candidate(mid, boxes, gateway, camera_id="bench", source=str(args.clip),
                                        threshold=0.5, start=0.0, end=seg[-1][0], best=mid_t), seg))

    configs = {
        "default: full + 2x2, then 3x3 where still needed": VerifierSettings(max_frames=args.max_frames),
        "full + 2x2 + 3x3 on every frame": VerifierSettings(max_frames=args.max_frames, escalate_tiles=False),
        "full + 2x2, 2 models": VerifierSettings(max_frames=args.max_frames, tile_grids=(2,)),
        "full frame only, 2 models": VerifierSettings(max_frames=args.max_frames, tile_grids=(), min_scales=1),
    }
    detectors = dict(base.detectors)
    if args.nanodet:
        three = VerifierSettings(max_frames=args.max_frames, models=(*base.settings.models, "nanodet-m"))
        detectors |= load_detectors(three.model_copy(update={"models": ("nanodet-m",)}))
        configs["default, 3 models (+ nanodet-m)"] = three
    results = {}
    for name, settings in configs.items():
        verifier = Verifier(settings, detectors={m: detectors[m] for m in settings.models})
        verifier.verify(*segments[0])  # warm-up
        calls_before = {m: d.calls for m, d in detectors.items()}
        started = time.perf_counter()
        decisions, examined = [], 0
        for candidate, seg in segments:
            verdict = verifier.verify(candidate, seg)
            decisions.append(verdict.decision)
            examined += verdict.frames_examined
        elapsed = time.perf_counter() - started
        results[name] = {
            "candidates_per_s": round(len(segments) / elapsed, 3),
            "frames_per_s": round(examined / elapsed, 2),
            "s_per_candidate": round(elapsed / len(segments), 3),
            "inferences": {m: d.calls - calls_before[m] for m, d in detectors.items()},
            "decisions": decisions,
        }
    print(json.dumps({
        "clip": str(args.clip), "segments": len(segments), "segment_s": args.segment_s,
        "max_frames": args.max_frames, "device": "CPU", "machine": platform.processor() or platform.machine(),
        "results": results,
    }, indent=1))


if __name__ == "__main__":
    main()
