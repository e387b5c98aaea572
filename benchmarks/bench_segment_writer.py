"""Event-segment writing cost on the gateway: ms per frame and bytes per frame. Prints JSON.

    python benchmarks/bench_segment_writer.py [--frames 100] [--out benchmarks/results/segment_writer.json]

Real footage (OpenCV's vtest.avi, 768x576, and the same frames scaled to 1280x720) written by
`models.video.SegmentWriter` as Matroska MJPEG and H.264 (libx264 ultrafast, zerolatency, one thread),
beside OpenCV's MJPG AVI writer (what the gateway used before, without time stamps). Measured side by
side in one run, interleaved; compare ratios, the machine is shared. No assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from models.video import SegmentWriter, open_video

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def write_cv2(path: Path, frames: list[np.ndarray]) -> None:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 5.0, (width, height))
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 90)
    for frame in frames:
        writer.write(frame)
    writer.release()


def write_mkv(path: Path, frames: list[np.ndarray], codec: str) -> None:
    height, width = frames[0].shape[:2]
    writer = SegmentWriter(path, width, height, codec=codec)  # type: ignore[arg-type]
    for i, frame in enumerate(frames):
        writer.write(i * 0.2, frame)
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=VTEST)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with open_video(args.clip) as reader:
        base = [f.image for _, f in zip(range(args.frames), reader.frames(), strict=False)]
    sizes = {"768x576": base, "1280x720": [cv2.resize(f, (1280, 720)) for f in base]}
    writers = {"cv2_mjpg_avi": lambda p, f: write_cv2(p.with_suffix(".avi"), f),
               "mkv_mjpeg": lambda p, f: write_mkv(p, f, "mjpeg"),
               "mkv_h264": lambda p, f: write_mkv(p, f, "h264")}
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size, frames in sizes.items():
            best: dict[str, float] = {}
            for _ in range(args.rounds):  # interleaved, best of rounds: the least disturbed run
                for name, write in writers.items():
                    path = Path(tmp) / f"{name}.mkv"
                    started = time.perf_counter()
                    write(path, frames)
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
            results[size] = {}
            for name in writers:
                path = Path(tmp) / f"{name}.mkv"
                path = path if path.exists() else path.with_suffix(".avi")
                results[size][name] = {"ms_per_frame": round(best[name] * 1000 / len(frames), 2),
                                       "kb_per_frame": round(path.stat().st_size / 1024 / len(frames), 1),
                                       "ratio_to_cv2": round(best[name] / best["cv2_mjpg_avi"], 2)}
    report = {"clip": args.clip.name, "frames": len(base), "rounds": args.rounds,
              "machine": f"{platform.machine()} cores={os.cpu_count()}",
              "results": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
