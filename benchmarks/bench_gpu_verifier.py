"""GPU verifier benchmark: the torch detector (models.torch_backend) on whatever device is present.

Measures, per verifier model:
  (a) the network alone, frames/s at batch 1/16/64/256 (random uint8 input already on the device), FP16
      autocast and FP32;
  (b) detect_batch end to end, frames/s on real vtest.avi frames with 5 crops each (full frame + 2×2 tiles):
      upload, crop+resize (on the device, or cv2 on the host), network, thresholding, NMS, Detection objects.
      Decoding is done beforehand and not counted;
  (c) the OpenVINO CPU detector on the same frames, when openvino is importable;
and how the torch detections agree with OpenVINO's (reference computed where OpenVINO runs).

Two ways to run it:
  python benchmarks/bench_gpu_verifier.py payload .gpu_payload     # here: exports + clip + reference
  python benchmarks/bench_gpu_verifier.py run --out result.json [--payload .gpu_payload] [--quick]
`run` without --payload uses the prepared models of this machine (exported on demand).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

MODELS = ("ssd-mobilenet-v2-coco", "ssdlite-person")
CLIP = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
REF_FRAMES = 8  # frames whose OpenVINO detections travel as the agreement reference
REF_FLOOR = 0.3
# The SSD export is ~67 MB in fp32: over what travels to the GPU machine, so it goes with fp16 weights.
PAYLOAD_WEIGHTS = {"ssd-mobilenet-v2-coco": "float16", "ssdlite-person": "float32"}


def read_frames(clip: Path, count: int, step: int = 1) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(clip))
    frames: list[np.ndarray] = []
    index = 0
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame)
        index += 1
    cap.release()
    if not frames:
        raise FileNotFoundError(f"no frames in {clip}")
    return frames


def _det_rows(dets: list[Any]) -> list[list[float]]:
    return [[d.x1, d.y1, d.x2, d.y2, d.score] for d in dets]


def build_payload(out: Path) -> None:
    """Everything the GPU machine needs and cannot make: torch exports, the clip, OpenVINO's detections."""
    from models.detector import PersonDetector
    from models.prepare import find_prepared
    from models.torch_backend import tiled_regions
    from models.torch_export import export_for_torch

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(CLIP, out / CLIP.name)
    frames = read_frames(CLIP, REF_FRAMES, step=25)
    reference: dict[str, Any] = {"clip": CLIP.name, "step": 25, "floor": REF_FLOOR, "models": {}}
    for model_id in MODELS:
        model_dir = find_prepared(model_id)
        export_for_torch(model_dir, out / model_id, weights_dtype=PAYLOAD_WEIGHTS[model_id])
        det = PersonDetector(model_dir, threads=2)
        reference["models"][model_id] = [_det_rows(det.detect(f, tiled_regions(f), REF_FLOOR)) for f in frames]
    (out / "reference.json").write_text(json.dumps(reference))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"payload in {out}: {total / 1e6:.1f} MB")


# -- measurement -------------------------------------------------------------------------------------------
def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Any, device: Any, seconds: float, min_iters: int = 3, warmup: int = 2) -> tuple[float, int]:
    for _ in range(warmup):
        fn()
    _sync(device)
    iters, start = 0, time.perf_counter()
    while True:
        fn()
        iters += 1
        if iters >= min_iters and time.perf_counter() - start >= seconds:
            break
    _sync(device)
    return time.perf_counter() - start, iters


def agreement(reference: list[list[list[float]]], got: list[list[list[float]]]) -> dict[str, Any]:
    """Each reference detection matched to the best-overlapping torch one: how many find an IoU > 0.9 partner,
    the worst score difference among those, and how many detections each side has."""
    from models.geometry import iou as box_iou  # reads x1, y1, x2, y2 of the [x1, y1, x2, y2, score] rows

    matched, total, worst_score, worst_iou = 0, 0, 0.0, 1.0
    for ref_dets, dets in zip(reference, got, strict=True):
        for r in ref_dets:
            total += 1
            best = max(dets, key=lambda d: box_iou(r, d), default=None)
            iou = box_iou(r, best) if best else 0.0
            worst_iou = min(worst_iou, iou)
            if iou > 0.9:
                matched += 1
                worst_score = max(worst_score, abs(r[4] - best[4]))
    return {"reference_detections": total, "torch_detections": sum(len(g) for g in got), "matched_iou_0.9": matched,
            "worst_iou": round(worst_iou, 4), "max_score_diff_matched": round(worst_score, 5)}


def bench_torch(model_id: str, artifacts: Path, frames: list[np.ndarray], reference: dict[str, Any] | None,
                ref_frames: list[np.ndarray], batches: list[int], e2e_batches: list[int], seconds: float
                ) -> dict[str, Any]:
    import torch

    from models.torch_backend import TorchPersonDetector, tiled_regions

    result: dict[str, Any] = {"network": {}, "end_to_end": {}, "agreement": {}}
    cuda = torch.cuda.is_available()
    precisions = ["FP16", "FP32"] if cuda else ["FP32"]
    for precision in precisions:
        det = TorchPersonDetector(artifacts, precision=precision)  # type: ignore[arg-type]
        result["weights_dtype"] = det.meta["weights_dtype"]
        rows = {}
        for batch in batches:
            x = torch.randint(0, 256, (batch, det.input_h, det.input_w, 3), dtype=torch.uint8, device=det.device)
            elapsed, iters = _timed(lambda x=x, det=det: det.forward(x), det.device, seconds)
            rows[str(batch)] = {"frames_per_s": round(batch * iters / elapsed, 1),
                                "ms_per_batch": round(1000 * elapsed / iters, 3)}
            print(f"  {model_id} network {precision} batch {batch}: {rows[str(batch)]}", flush=True)
        result["network"][precision] = rows
        resizes = ["gpu", "cpu"] if cuda else ["cpu"]
        for resize in resizes:
            det.resize = resize
            key = f"{precision}_resize-{resize}"
            if reference is not None:
                got = [[[d.x1, d.y1, d.x2, d.y2, d.score] for d in dets]
                       for dets in det.detect_batch(ref_frames, [tiled_regions(f) for f in ref_frames], REF_FLOOR)]
                result["agreement"][key] = agreement(reference["models"][model_id], got)
                print(f"  {model_id} agreement {key}: {result['agreement'][key]}", flush=True)
            rows = {}
            for nframes in e2e_batches:
                chunk = [frames[i % len(frames)] for i in range(nframes)]
                regions = [tiled_regions(f) for f in chunk]
                elapsed, iters = _timed(lambda c=chunk, r=regions, det=det: det.detect_batch(c, r, REF_FLOOR),
                                        det.device, seconds)
                rows[str(nframes)] = {"frames_per_s": round(nframes * iters / elapsed, 1),
                                      "crops_per_s": round(5 * nframes * iters / elapsed, 1),
                                      "ms_per_call": round(1000 * elapsed / iters, 2)}
                print(f"  {model_id} detect_batch {key} {nframes} frames/call: {rows[str(nframes)]}", flush=True)
            result["end_to_end"][key] = rows
        del det
        if cuda:
            torch.cuda.empty_cache()
    return result


def bench_openvino(model_id: str, frames: list[np.ndarray], seconds: float) -> dict[str, Any]:
    from models.detector import PersonDetector
    from models.prepare import find_prepared
    from models.torch_backend import tiled_regions

    det = PersonDetector(find_prepared(model_id), mode="throughput")
    x = det.preprocess(frames[0])
    pipe = det.pipeline()
    n = 64

    def network() -> None:
        for i in range(n):
            pipe._queue.start_async({0: x}, (i, 0, None))  # raw inferences, results not read
        pipe._queue.wait_all()

    pipe._on_done = lambda *a: None  # type: ignore[method-assign]
    pipe._queue.set_callback(pipe._on_done)
    elapsed, iters = _timed(network, _Cpu(), seconds, min_iters=1, warmup=1)
    out: dict[str, Any] = {"network_frames_per_s": round(n * iters / elapsed, 1),
                           "requests_in_flight": det.optimal_requests}
    pipe = det.pipeline()
    chunk = frames[:32]

    def tiled() -> None:
        for i, f in enumerate(chunk):
            pipe.submit(f, i, tiled_regions(f), REF_FLOOR)
        list(pipe.drain())

    elapsed, iters = _timed(tiled, _Cpu(), seconds, min_iters=1, warmup=1)
    out["tiled_frames_per_s"] = round(len(chunk) * iters / elapsed, 1)
    return out


class _Cpu:
    type = "cpu"


def environment() -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "cpu_count": os.cpu_count(), "platform": platform.platform()}
    try:
        import torchvision

        env["torchvision"] = torchvision.__version__
    except Exception as exc:  # missing, or built for another torch
        env["torchvision"] = f"unavailable ({type(exc).__name__})"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(device=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), gpu_memory_gib=round(props.total_memory / 2**30, 1))
    else:
        env["device"] = "cpu"
    return env


def run(args: argparse.Namespace) -> None:
    import torch

    torch.backends.cudnn.benchmark = True  # fixed 300×300 shapes: let cuDNN pick its kernels once
    if not torch.cuda.is_available():
        torch.set_num_threads(max(1, args.threads))
    payload = Path(args.payload) if args.payload else None
    clip = payload / CLIP.name if payload else CLIP
    frames = read_frames(clip, args.frames)
    ref_frames = read_frames(clip, REF_FRAMES, step=25)
    reference = json.loads((payload / "reference.json").read_text()) if payload else None
    report: dict[str, Any] = {"measured_at": datetime.now(UTC).isoformat(), "environment": environment(),
                              "settings": {"seconds_per_point": args.seconds, "batches": args.batches,
                                           "e2e_frames_per_call": args.e2e, "crops_per_frame": 5,
                                           "floor": REF_FLOOR, "clip": clip.name, "frames_decoded": len(frames)},
                              "models": {}}
    print(json.dumps(report["environment"]), flush=True)
    for model_id in args.models:
        if payload:
            artifacts = payload / model_id
        else:
            from models.backends import torch_artifacts

            artifacts = torch_artifacts(model_id)
        try:
            report["models"][model_id] = {"torch": bench_torch(model_id, artifacts, frames, reference, ref_frames,
                                                               args.batches, args.e2e, args.seconds)}
        except Exception:  # one model's failure must not lose the other's figures (device time is scarce)
            report["models"][model_id] = {"torch_error": traceback.format_exc()}
            print(report["models"][model_id]["torch_error"], flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))  # partial results survive a timeout
        try:
            import openvino  # noqa: F401
        except ImportError:
            continue
        report["models"][model_id]["openvino_cpu"] = bench_openvino(model_id, frames, args.seconds)
        print(f"  {model_id} openvino: {report['models'][model_id]['openvino_cpu']}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    pay = sub.add_parser("payload", help="build the folder the GPU machine gets (needs OpenVINO)")
    pay.add_argument("out", type=Path)
    r = sub.add_parser("run", help="measure on this machine's device")
    r.add_argument("--out", required=True)
    r.add_argument("--payload", help="folder from `payload` (else: prepared models here)")
    r.add_argument("--models", nargs="+", default=list(MODELS))
    r.add_argument("--seconds", type=float, default=2.0, help="per measured point")
    r.add_argument("--frames", type=int, default=256, help="vtest.avi frames decoded beforehand")
    r.add_argument("--threads", type=int, default=2, help="torch CPU threads when no GPU")
    r.add_argument("--quick", action="store_true", help="a smoke test: small batches, short points")
    args = parser.parse_args()
    if args.cmd == "payload":
        build_payload(args.out)
        return
    args.batches, args.e2e = ([1, 4], [1, 4]) if args.quick else ([1, 16, 64, 256], [1, 16, 64, 256])
    if args.quick:
        args.seconds, args.frames = min(args.seconds, 0.3), min(args.frames, 8)
    run(args)


if __name__ == "__main__":
    main()
