"""Capacity: how many 5 fps cameras one gateway sustains without dropping a frame.

The real service path: the `Supervisor` starts one thread per camera, every camera runs `EdgeAgent.run_live`
into one shared OpenVINO detector, with a real outbox and clip segments in a temporary data dir. Only the
source is replaced: each camera is a `PacedFileSource`, a `LiveSource` whose reader thread, instead of a
network connection, decodes a real H.264 file (vtest.avi at its full 768x576, 5 fps, a keyframe a second)
paced to real time (frame i is due at start + i / 5 s of the monotonic clock), converts it to BGR and
puts it in the LiveSource's own bounded queue, which drops the oldest frame when the agent falls behind.
A frame the reader itself could not produce within `LATE_S` of its due time (decoding starved of CPU) is
skipped and counted as dropped too. Decoding therefore costs what it costs on a gateway; only the
network is left out. Every camera starts at a different point of the footage (spread by the golden
ratio), so people do not appear on every camera at once.

Footage: "100 %" is vtest.avi looped (people walk in every frame); "20 %" is 12 s of vtest walking then
48 s of the scene's empty background (its per-pixel median), each window the next stretch of the clip.

For each N (cameras) the agent runs `--warmup` s, then drops are counted over `--measure` s. N is searched
(doubling, then bisection) for the largest N with no drop. The raw throughput of the same model (OpenVINO
AsyncInferQueue, pre-made inputs, the better of one and two requests per stream: bench_edge.raw_throughput)
is measured in the same run, before each precision's search, and the capacity is reported against it:
camera frames per second sustained / raw inferences per second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_soak  # noqa: E402
from bench_edge import raw_throughput  # noqa: E402

import edge_agent.agent as agent_module  # noqa: E402
from contracts import CameraConfig, GatewayConfig  # noqa: E402
from edge_agent.agent import EdgeAgent  # noqa: E402
from edge_agent.config_provider import StaticConfig  # noqa: E402
from edge_agent.outbox import Outbox  # noqa: E402
from edge_agent.process_tuning import tune_gateway_process  # noqa: E402
from edge_agent.settings import AgentSettings  # noqa: E402
from edge_agent.sources import Frame, LiveSource  # noqa: E402
from edge_agent.supervisor import Supervisor  # noqa: E402
from models.catalog import GATEWAY_MODEL  # noqa: E402
from models.detector import PersonDetector  # noqa: E402
from models.prepare import find_prepared  # noqa: E402
from models.video import PacketBatch, SourcePacket, StreamTemplate  # noqa: E402

FPS = 5
LATE_S = 0.5  # a frame the reader produces later than this after its due time is skipped (and counted)
GOLDEN = 0.6180339887
MEDIA: dict[str, Path] = {}  # the URL each camera is given → the file its paced source decodes
KEEP_PACKETS = True  # event segments by stream copy (False: re-encoded, as before the remux; --encode-segments)


class PacedFileSource(LiveSource):
    """A LiveSource fed by decoding a file at real time instead of a network stream (see the docstring)."""

    def __init__(self, uri: str, camera_id: str, sample_fps: float, **kwargs) -> None:
        super().__init__(uri, camera_id, sample_fps, **kwargs)
        self.keep_packets = KEEP_PACKETS
        self.media = MEDIA[uri.split("?")[0]]
        self.offset = float(uri.split("offset=")[1]) if "offset=" in uri else 0.0
        self.late = 0

    def _run(self) -> None:  # replaces the network reader; the queue, drops and status are LiveSource's own
        import av

        self._set_state("connected", "paced source started")
        period = 1.0 / FPS
        due = time.monotonic()
        while not self._halt.is_set():
            with av.open(str(self.media)) as container:
                stream = container.streams.video[0]
                # As the real reader does: each frame carries the packets demuxed since the previous one, so
                # event segments are a stream copy (keep_packets=False: encoded, the pre-remux behaviour).
                template = StreamTemplate(stream) if self.keep_packets else None
                pending: list[SourcePacket] = []
                if self.offset:
                    container.seek(int(self.offset / stream.time_base), stream=stream)
                    self.offset = 0.0  # later passes from the start
                for packet in container.demux(stream):
                    if packet.size == 0:
                        continue
                    if template is not None:
                        pending.append(SourcePacket(bytes(packet), packet.pts, packet.dts, bool(packet.is_keyframe),
                                                    float(packet.pts * stream.time_base)
                                                    if packet.pts is not None else None))
                    for frame in packet.decode():
                        wait = due - time.monotonic()
                        if wait > 0 and self._halt.wait(wait):
                            return
                        if self._halt.is_set():
                            return
                        late = time.monotonic() - due
                        due += period
                        if late > LATE_S:
                            with self._lock:
                                self._dropped += 1
                                self._frames += 1
                            self.late += 1
                            continue  # its packets go with the next frame: the segment has no hole
                        now = time.monotonic()
                        ts = now - self._t0
                        batch = None
                        if template is not None:
                            shift = ts - float(frame.pts * stream.time_base)
                            batch, pending = PacketBatch(template, pending, shift_s=shift), []
                        self._put(Frame(ts=ts, image=frame.to_ndarray(format="bgr24"), wall=time.time(),
                                        packets=batch))


def encode(frames: list[np.ndarray], dst: Path) -> Path:
    return bench_soak.write_stream_file(frames, dst, FPS, loops=1)


def footage(kind: str, clip: Path) -> list[np.ndarray]:
    frames, src_fps = bench_soak.load_scaled(clip, 768)
    if kind == "20":
        # the soak's construction at full size: 12 s of walking, 48 s of the empty scene, per window
        return bench_soak.footage_frames(clip, FPS, width=768)
    step = round(src_fps / FPS)
    return frames[::step]


def trial(detector: PersonDetector, media: Path, duration_s: float, n: int, warmup_s: float,
          measure_s: float) -> dict:
    """N paced cameras through the Supervisor; frames and drops over the measuring window."""
    tmp = Path(tempfile.mkdtemp(prefix="vigia-capacity-"))
    try:
        settings = AgentSettings(data_dir=tmp)
        agent = EdgeAgent(settings, StaticConfig(GatewayConfig(defaults=CameraConfig(sample_fps=FPS))), detector,
                          Outbox(settings.outbox_path))
        sources = {}
        for i in range(n):
            url = f"rtsp://paced.invalid/cam{i}"
            MEDIA[url] = media
            sources[f"cam{i}"] = f"{url}?offset={(i * GOLDEN % 1.0) * duration_s:.1f}"
        supervisor = Supervisor(agent, sources).start()
        time.sleep(warmup_s)

        def totals() -> tuple[int, int]:
            statuses = agent.camera_status().values()
            return sum(s.frames for s in statuses), sum(s.dropped_frames for s in statuses)

        frames0, dropped0, calls0 = *totals(), detector.calls
        load0 = os.getloadavg()[0]
        started = time.monotonic()
        time.sleep(measure_s)
        elapsed = time.monotonic() - started
        frames1, dropped1 = totals()
        calls1 = detector.calls
        supervisor.stop()
        supervisor.wait(timeout=10)
        frames, dropped = frames1 - frames0, dropped1 - dropped0
        return {"cameras": n, "frames": frames, "dropped": dropped,
                "drop_fraction": round(dropped / max(frames, 1), 4),
                "camera_fps": round(frames / elapsed, 1), "inferences_per_s": round((calls1 - calls0) / elapsed, 1),
                "load_1m": round((load0 + os.getloadavg()[0]) / 2, 2)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def search(detector: PersonDetector, media: Path, duration_s: float, start: int, limit: int, warmup_s: float,
           measure_s: float, tolerance: float) -> tuple[int, list[dict]]:
    """Largest N with drops ≤ tolerance: up by half from `start` until it fails, then bisect."""
    trials: list[dict] = []

    def ok(n: int) -> bool:
        result = trial(detector, media, duration_s, n, warmup_s, measure_s)
        result["sustained"] = result["drop_fraction"] <= tolerance
        trials.append(result)
        print(json.dumps(result), flush=True)
        return result["sustained"]

    good, bad = 0, None
    n = start
    while n <= limit:
        if ok(n):
            good = n
            n = max(n + 1, int(n * 1.5))
        else:
            bad = n
            break
    if bad is None:
        return good, trials
    if good == 0:  # even `start` failed: halve until one holds
        n = bad // 2
        while n >= 1 and not ok(n):
            bad, n = n, n // 2
        if n < 1:
            return 0, trials
        good = n
    while bad - good > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good, trials


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", action="append", choices=["FP32", "INT8"])
    parser.add_argument("--motion", action="append", choices=["100", "20"], help="motion share of frames (%%)")
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--measure", type=float, default=15.0)
    parser.add_argument("--raw-seconds", type=float, default=8.0)
    parser.add_argument("--tolerance", type=float, default=0.0, help="drop fraction still counted as sustained")
    parser.add_argument("--max-cameras", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="shorter windows (warm-up 4 s, measure 8 s)")
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--name", default="capacity")
    parser.add_argument("--encode-segments", action="store_true",
                        help="re-encode event segments (libx264) instead of copying the source's packets")
    args = parser.parse_args()
    tune_gateway_process()  # what `vigia edge run` sets before its threads start
    global KEEP_PACKETS
    KEEP_PACKETS = not args.encode_segments
    if args.quick:
        args.warmup, args.measure, args.raw_seconds = 4.0, 8.0, 4.0
    logging.basicConfig(level=logging.WARNING)
    agent_module.LiveSource = PacedFileSource  # type: ignore[misc]  # the only substitution: see the docstring
    clip = bench_soak.vtest_path()
    tmp = Path(tempfile.mkdtemp(prefix="vigia-capacity-media-"))
    raw_frames = bench_soak.load_scaled(clip, 768)[0][:64]
    results = {"benchmark": "capacity", "model": GATEWAY_MODEL, "camera_fps": FPS,
               "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version(), "load_1m_at_start": os.getloadavg()[0]},
               "method": {"source": "in-process PacedFileSource (LiveSource queue of 4, drops oldest) decoding "
                                    "H.264 768x576 at 5 fps real time; network not included",
                          "warmup_s": args.warmup, "measure_s": args.measure, "tolerance": args.tolerance,
                          "camera_config": "CameraConfig defaults (5 fps, motion gate, tiling auto)",
                          "segments": "encoded (libx264)" if args.encode_segments else "stream copy of the source's "
                                                                                       "packets"},
               "runs": []}
    try:
        media = {}
        for kind in args.motion or ["20", "100"]:
            frames = footage(kind, clip)
            media[kind] = (encode(frames, tmp / f"motion{kind}.mkv"), len(frames) / FPS)
        for precision in args.precision or ["FP32", "INT8"]:
            model_dir = find_prepared(GATEWAY_MODEL, precision)
            raw = raw_throughput(model_dir, raw_frames, args.raw_seconds)
            print(json.dumps({"precision": precision, "raw": raw}), flush=True)
            detector = PersonDetector(model_dir, mode="throughput")
            for kind, (path, duration) in media.items():
                # Start near the guess: all-motion needs about one inference per frame.
                guess = max(1, int(raw["inferences_per_s"] / FPS * (0.7 if kind == "100" else 2.0)))
                best, trials = search(detector, path, duration, guess, args.max_cameras, args.warmup, args.measure,
                                      args.tolerance)
                run = {"precision": precision, "motion_percent": int(kind), "raw_async": raw,
                       "max_cameras_no_drop": best,
                       "camera_fps_over_raw": round(best * FPS / raw["inferences_per_s"], 3),
                       "trials": trials}
                results["runs"].append(run)
                print(json.dumps({k: v for k, v in run.items() if k != "trials"}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["machine"]["load_1m_at_end"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    print(f"written {args.out / (args.name + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
