"""Gateway benchmark, side by side in one run on this machine:

1. raw OpenVINO throughput of the gateway model (AsyncInferQueue, pre-made inputs; the better of one and two
   requests per inference stream);
2. the agent end to end on vtest.avi (decode, sample, motion gate, detect, filter, track, events);
3. the floor: the least any agent must do a frame besides inference (decode and convert on a prefetch thread,
   the motion gate, the network's input, asynchronous inference with no result handling), which bounds
   agent/raw from above on this host;
4. an estimate, from 1 and 2, of how many 5 fps camera streams one gateway like this sustains (the
   measured figure, with live cameras through the supervisor, is benchmarks/bench_capacity.py's).

`--quick` (about 4 minutes for one precision) is for a re-run in a quiet window; the 1-minute load average
is recorded per round, since a noisy neighbour on a shared machine moves both sides of the ratio.

Prints and writes JSON; asserts nothing (claims live here, not in tests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from thread_cpu import ThreadCpu, per_frame_ms

from contracts import CameraConfig, GatewayConfig, MotionSettings
from edge_agent.agent import EdgeAgent
from edge_agent.config_provider import StaticConfig
from edge_agent.motion import MotionGate
from edge_agent.prefetch import prefetched
from edge_agent.process_tuning import tune_gateway_process
from edge_agent.settings import AgentSettings
from edge_agent.sources import open_clip
from models.catalog import GATEWAY_MODEL
from models.detector import PersonDetector
from models.prepare import prepare
from models.sample_media import fetch_opencv_doc, opencv_doc_dir

STREAM_FPS = 5.0


def process_cpu_s() -> float:
    """CPU seconds this process has used, all threads (OpenVINO's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def vtest_path() -> Path:
    folder = opencv_doc_dir() or fetch_opencv_doc(Path(".cache"))
    return folder / "vtest.avi"


def raw_throughput(model_dir: Path, frames: list[np.ndarray], seconds: float) -> dict:
    """The model's best raw rate: with as many requests as inference streams, and with two per stream (a stream
    that finishes then finds the next input queued; on 2 cores that is 4-12 % faster), the higher counts."""
    det = PersonDetector(model_dir, mode="throughput")
    inputs = [det.preprocess(f) for f in frames]
    tries = [_raw_with(det, inputs, requests, seconds) for requests in (det.optimal_requests, 2 * det.optimal_requests)]
    best = max(tries, key=lambda t: t["inferences_per_s"])
    return best | {"by_requests": {t["requests"]: t["inferences_per_s"] for t in tries}}


def _raw_with(det: PersonDetector, inputs: list[np.ndarray], requests: int, seconds: float) -> dict:
    import openvino as ov

    queue = ov.AsyncInferQueue(det._compiled, requests)
    for x in inputs[: requests * 2]:  # warm up
        queue.start_async({0: x})
    queue.wait_all()
    done, started, cpu = 0, time.perf_counter(), process_cpu_s()
    while time.perf_counter() - started < seconds:
        for x in inputs:
            queue.start_async({0: x})
        done += len(inputs)
    queue.wait_all()
    elapsed = time.perf_counter() - started
    return {"inferences_per_s": round(done / elapsed, 1), "requests": requests, "inferences": done,
            "cpu_ms_per_inference": round((process_cpu_s() - cpu) / done * 1e3, 2)}


def agent_throughput(model_dir: Path, clip: Path, sample_fps: float, tiling: str, repeats: int,
                     clip_mode: str = "segment") -> dict:
    det = PersonDetector(model_dir, mode="throughput")
    cfg = CameraConfig(sample_fps=sample_fps, tiling=tiling)  # type: ignore[arg-type]
    best = None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            settings = AgentSettings(data_dir=Path(tmp), clip_mode=clip_mode)  # type: ignore[arg-type]
            agent = EdgeAgent(settings, StaticConfig(GatewayConfig(defaults=cfg)), det)
            with ThreadCpu() as threads:
                started, cpu = time.perf_counter(), process_cpu_s()
                report = agent.process_clip(str(clip), "bench")
                elapsed, cpu = time.perf_counter() - started, process_cpu_s() - cpu
        run = {"frames": report.frames_sampled, "detector_frames": report.detector_frames,
               "detector_calls": report.detector_calls, "seconds": round(elapsed, 2),
               "frames_per_s": round(report.frames_sampled / elapsed, 1),
               "inferences_per_s": round(report.detector_calls / elapsed, 1), "candidates": len(report.candidates),
               "cpu_ms_per_frame": round(cpu / max(report.frames_sampled, 1) * 1e3, 2),
               "cpu_ms_per_frame_by_thread": per_frame_ms(threads.by_role(), report.frames_sampled)}
        if best is None or run["frames_per_s"] > best["frames_per_s"]:
            best = run
    assert best is not None
    return best


def floor_throughput(model_dir: Path, clip: Path) -> dict:
    """Every frame of the clip through only what no agent can skip: decoding and BGR conversion on a prefetch
    thread (as the agent reads), the motion gate (grey, shrink, background, blobs) and the network's input,
    then inference with no callback and no result handling (no tracking, events, segments, logs, metrics).
    What this spends a frame outside inference is a floor under the agent's; its share bounds agent/raw. (The
    input is copied into the request, ~0.07 ms a frame more than the agent's shared input: within the noise.)"""
    import openvino as ov

    det = PersonDetector(model_dir, mode="throughput")
    queue = ov.AsyncInferQueue(det._compiled, 2 * det.optimal_requests)
    gate = MotionGate(MotionSettings())
    clip_file = open_clip(str(clip))
    frames = 0
    with ThreadCpu() as threads:
        started, cpu = time.perf_counter(), process_cpu_s()
        for frame in prefetched(clip_file.frames(10.0), name="decode-floor"):
            gate.check(frame.image)
            queue.start_async({0: det.preprocess(frame.image)})
            frames += 1
        queue.wait_all()
        elapsed, cpu = time.perf_counter() - started, process_cpu_s() - cpu
    clip_file.close()
    return {"frames": frames, "frames_per_s": round(frames / elapsed, 1),
            "cpu_ms_per_frame": round(cpu / max(frames, 1) * 1e3, 2),
            "cpu_ms_per_frame_by_thread": per_frame_ms(threads.by_role(), frames)}


def _share(by_thread: dict[str, float]) -> tuple[float, float]:
    """CPU a frame outside inference, and inference's share of the CPU a frame."""
    outside = round(sum(ms for role, ms in by_thread.items() if role != "inference"), 2)
    inference = by_thread.get("inference", 0.0)
    return outside, round(inference / max(inference + outside, 1e-9), 3)


def _median_by_role(rounds: list[dict[str, float]]) -> dict[str, float]:
    roles = {role for r in rounds for role in r}
    medians = {role: sorted(r.get(role, 0.0) for r in rounds)[len(rounds) // 2] for role in roles}
    return dict(sorted(medians.items(), key=lambda m: -m[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--precision", action="append", choices=["FP32", "INT8"])
    parser.add_argument("--seconds", type=float, default=10.0, help="raw throughput measuring time")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/agent rounds (median reported)")
    parser.add_argument("--quick", action="store_true",
                        help="4 s raw windows, no clip_mode=source variant (about 4 minutes for one precision)")
    args = parser.parse_args()
    tune_gateway_process()  # what `vigia edge run` sets before its threads start
    if args.quick:
        args.seconds = min(args.seconds, 4.0)
    clip = vtest_path()
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < 64:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    results = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version(), "load_1m_at_start": os.getloadavg()[0]},
               "clip": clip.name, "model": GATEWAY_MODEL,
               "segments": "stream copy of the clip's own packets (edge_agent.segments, since the remux)",
               "runs": []}
    for precision in args.precision or ["FP32"]:
        model_dir, manifest = prepare(GATEWAY_MODEL, precision)
        # Raw and agent alternate, round after round, so a noisy neighbour on a shared machine shows up as a
        # spread of ratios instead of biasing one side; the median round is reported.
        rounds, source_rounds, cpu_ratios, floor_rounds = [], [], [], []
        for _ in range(args.rounds):
            raw_r = raw_throughput(model_dir, frames, args.seconds)
            agent_r = agent_throughput(model_dir, clip, 10.0, "off", 1)
            floor_r = floor_throughput(model_dir, clip)
            raw_r["load_1m"] = os.getloadavg()[0]
            rounds.append((agent_r["frames_per_s"] / raw_r["inferences_per_s"], raw_r, agent_r))
            floor_rounds.append((floor_r["frames_per_s"] / raw_r["inferences_per_s"], floor_r))
            cpu_ratios.append(raw_r["cpu_ms_per_inference"] / agent_r["cpu_ms_per_frame"])
            if not args.quick:
                source_r = agent_throughput(model_dir, clip, 10.0, "off", 1, clip_mode="source")
                source_rounds.append((source_r["frames_per_s"] / raw_r["inferences_per_s"], raw_r, source_r))
        by_thread = _median_by_role([r[2]["cpu_ms_per_frame_by_thread"] for r in rounds])
        outside, share = _share(by_thread)
        floor_by_thread = _median_by_role([r[1]["cpu_ms_per_frame_by_thread"] for r in floor_rounds])
        floor_outside, floor_share = _share(floor_by_thread)
        floor_ratios = sorted(r[0] for r in floor_rounds)
        rounds.sort(key=lambda r: r[0])
        source_rounds.sort(key=lambda r: r[0])
        ratio, raw, agent = rounds[len(rounds) // 2]
        source_ratio, _, source_agent = source_rounds[len(source_rounds) // 2] if source_rounds else (None, None, {})
        agent_default = agent_throughput(model_dir, clip, STREAM_FPS, "auto", 1)
        calls_per_frame = agent["detector_calls"] / max(agent["frames"], 1)
        run = {
            "precision": precision, "ir_sha256": manifest.ir_bin_sha256[:16],
            "raw_async": raw,
            "agent_every_frame": agent | {"note": "vtest.avi at its native 10 fps, every frame analysed"},
            "agent_fps_over_raw": round(ratio, 3),
            "ratio_per_round": [round(r[0], 3) for r in rounds],
            # CPU spent by raw inference per inference over CPU spent by the agent per frame: what agent/raw
            # tends to when inference fills the cores, and steadier on a shared host, where a neighbour
            # slows whichever wall-clock window it falls in.
            "cpu_ratio": round(sorted(cpu_ratios)[len(cpu_ratios) // 2], 3),
            "cpu_ratio_per_round": [round(r, 3) for r in cpu_ratios],
            # Per thread, median over rounds: what each part of the agent costs a frame, and the ratio the
            # CPU outside inference allows when inference fills every core (steadier than either ratio above).
            "cpu_ms_per_frame_by_thread": by_thread,
            "cpu_ms_per_frame_outside_inference": outside,
            "inference_share_of_agent_cpu": share,
            # The floor (floor_throughput): what is left of agent/raw when the agent does nothing but read its
            # frames, gate motion and feed the network. The agent's logic has to fit between the two.
            "floor_fps_over_raw": round(floor_ratios[len(floor_ratios) // 2], 3),
            "floor_ratio_per_round": [round(r, 3) for r in floor_ratios],
            "floor_cpu_ms_per_frame_by_thread": floor_by_thread,
            "floor_cpu_ms_per_frame_outside_inference": floor_outside,
            "inference_share_of_floor_cpu": floor_share,
            "agent_inferences_over_raw": round(agent["inferences_per_s"] / raw["inferences_per_s"], 3),
            "agent_source_clip_mode": source_agent | {"note": "clip_mode=source: the camera's clip file is handed "
                                                      "over instead of re-encoding a segment"},
            "agent_source_clip_mode_fps_over_raw": round(source_ratio, 3) if source_ratio is not None else None,
            "source_ratio_per_round": [round(r[0], 3) for r in source_rounds],
            "agent_default_config": agent_default | {"note": "defaults: 5 fps sampling, motion gate, auto zoom"},
            "streams_at_5fps_all_motion": round(agent["frames_per_s"] / STREAM_FPS / max(calls_per_frame, 1e-9), 1),
            "streams_at_5fps_default_on_vtest": round(
                agent["frames_per_s"] / STREAM_FPS * agent_default["frames"] / max(agent_default["detector_calls"], 1),
                1),
        }
        run["load_1m_per_round"] = [round(r[1]["load_1m"], 2) for r in rounds]
        results["runs"].append(run)
        print(json.dumps(run, indent=2), flush=True)
    results["machine"]["load_1m_at_end"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "edge.json").write_text(json.dumps(results, indent=2))
    print(f"written {args.out / 'edge.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
