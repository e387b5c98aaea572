"""Soak: days of camera time, accelerated, through a real RTSP server into the real gateway agent.

What runs
- footage: OpenCV's vtest.avi (Debian opencv-doc), scaled to 384x288: 12 s windows of people walking
  separated by 48 s of the scene's empty background (the per-pixel median of the clip), so about 20 % of
  the frames move; each cycle takes the next window of the clip. H.264, a keyframe a second.
- server: GStreamer's RTSP server (tests/rtsp_server.py, Debian's python3), on loopback, one per camera
  (each camera's file starts at a different point of the footage, so people do not appear everywhere at
  once), serving that file
  `--speed` times faster than the footage: the file's time stamps are compressed by that factor, so the
  server (clock-synced) streams `content_fps * speed` frames a second of wall time. It is killed
  (SIGKILL, like a camera losing power), all servers at once, and restarted every `--restart-every` seconds.
- agent: the real `Supervisor` + `EdgeAgent` (one thread per camera, one shared OpenVINO detector, live
  sources with reconnect), the prepared model, a real outbox and clip segments in a temporary data
  dir, and the `Housekeeper` with a small clip quota.
- acceleration: each camera samples `content_fps * speed` frames per second of wall time, i.e. every frame
  of the stream, and every time setting of the camera (keyframe interval, track gaps, event gap and
  length, stationary memory) is divided by `speed`, so that per frame the agent behaves as a
  `content_fps` camera watching the footage in real time. No broker runs: a stand-in acknowledges
  (marks sent) what is pending every sample, so the housekeeper purges rows and may delete their clips.

Camera time is counted from what reached the agent: Σ over cameras of the frames the live source
received (analysed or dropped by its bounded queue) / `content_fps`. Frames lost while the server was
down are not counted.

Every `--interval` seconds: resident memory (VmRSS of this process, which holds the agent), open file
descriptors, threads, the mean time a camera thread spent per frame (a timing wrapper around
CameraSession.feed: decode excluded, back-pressure from the detector included), frames/s, outbox rows
(pending/sent/file size), disk use of the data dir, live tracks, frames waiting for the detector,
reconnects, dropped frames, the 1-minute load average. Writes JSON and a PNG, with a verdict per series:
the least-squares slope over the last 3/4 of the run (by camera time), and the change it implies over that
stretch relative to the series' mean ("flat" under 10 %).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import weakref
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests/ (the RTSP server) is not an installed package
    sys.path.insert(0, str(ROOT))

from contracts import CameraConfig, GatewayConfig  # noqa: E402
from edge_agent.agent import EdgeAgent  # noqa: E402
from edge_agent.camera import CameraSession  # noqa: E402
from edge_agent.config_provider import StaticConfig  # noqa: E402
from edge_agent.outbox import Outbox  # noqa: E402
from edge_agent.process_tuning import tune_gateway_process  # noqa: E402
from edge_agent.retention import Housekeeper, RetentionSettings  # noqa: E402
from edge_agent.settings import AgentSettings  # noqa: E402
from edge_agent.supervisor import Supervisor  # noqa: E402
from models.catalog import GATEWAY_MODEL  # noqa: E402
from models.detector import PersonDetector  # noqa: E402
from models.prepare import find_prepared  # noqa: E402
from models.sample_media import fetch_opencv_doc, opencv_doc_dir  # noqa: E402
from tests.rtsp_server import RtspServer, gstreamer_available, loop_remux  # noqa: E402

log = logging.getLogger("bench.soak")

WIDTH = 384
CYCLE_S = 60.0  # footage: one window of people, then the empty scene
MOTION_S = 12.0  # 20 % of a cycle


# -- footage -----------------------------------------------------------------------------------------
def vtest_path() -> Path:
    folder = opencv_doc_dir() or fetch_opencv_doc(Path(".cache"))
    return folder / "vtest.avi"


def load_scaled(src: Path, width: int) -> tuple[list[np.ndarray], float]:
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        height = round(frame.shape[0] * width / frame.shape[1] / 2) * 2
        frames.append(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    cap.release()
    if not frames:
        raise RuntimeError(f"{src}: no frame decoded")
    return frames, fps


def footage_frames(src: Path, content_fps: float, width: int = WIDTH) -> list[np.ndarray]:
    """One pass of the footage at `content_fps`: every window of walking people once, each followed by the
    empty scene (the per-pixel median over the clip: the walkers vanish, the real background stays)."""
    frames, src_fps = load_scaled(src, width)
    background = np.median(np.stack(frames[:: max(1, len(frames) // 60)]), axis=0).astype(np.uint8)
    step = src_fps / content_fps
    per_window = int(MOTION_S * src_fps)
    out: list[np.ndarray] = []
    for start in range(0, len(frames) - per_window + 1, per_window):
        picks = [frames[start + int(i * step)] for i in range(int(MOTION_S * content_fps))]
        out.extend(picks)
        out.extend([background] * int((CYCLE_S - MOTION_S) * content_fps))
    return out


def write_stream_file(frames: list[np.ndarray], dst: Path, stream_fps: int, loops: int) -> Path:
    """H.264 Matroska at `stream_fps` (a keyframe a second of stream time), the pass repeated `loops` times
    by remuxing its packets with shifted times (encoded once)."""
    import av

    once_path = dst.with_suffix(".once.mkv")
    height, width = frames[0].shape[:2]
    with av.open(str(once_path), "w", format="matroska") as once:
        out = once.add_stream("libx264", rate=stream_fps, options={
            "preset": "ultrafast", "tune": "zerolatency", "g": str(stream_fps), "bf": "0"})
        out.width, out.height, out.pix_fmt = width, height, "yuv420p"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, stream_fps)
            once.mux(out.encode(frame))
        once.mux(out.encode(None))
    return loop_remux(once_path, dst, loops)


# -- the agent under test ----------------------------------------------------------------------------
def accelerated_config(content_fps: float, speed: float) -> CameraConfig:
    """The default camera at `content_fps`, with every time setting divided by `speed` (see the docstring)."""
    base = CameraConfig(sample_fps=content_fps)
    motion = base.motion.model_copy(update={"keyframe_interval_s": max(0.5, base.motion.keyframe_interval_s / speed)})
    t = base.tracking
    tracking = t.model_copy(update={
        "min_duration_s": t.min_duration_s / speed, "max_gap_s": t.max_gap_s / speed,
        "event_gap_s": t.event_gap_s / speed, "max_event_s": max(1.0, t.max_event_s / speed),
        "stationary_ttl_s": max(motion.keyframe_interval_s, t.stationary_ttl_s / speed)})
    return CameraConfig.model_validate(base.model_dump() | {
        "sample_fps": content_fps * speed, "motion": motion.model_dump(), "tracking": tracking.model_dump()})


class FeedTimer:
    """Wraps CameraSession.feed (class-wide) to time it, and keeps a weak set of the live sessions."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds = 0.0
        self.calls = 0
        self.sessions: weakref.WeakSet[CameraSession] = weakref.WeakSet()
        original_feed, original_init = CameraSession.feed, CameraSession.__init__
        timer = self

        def feed(session: CameraSession, ts: float, wall: float, image: np.ndarray) -> None:
            started = time.perf_counter()
            try:
                original_feed(session, ts, wall, image)
            finally:
                spent = time.perf_counter() - started
                with timer.lock:
                    timer.seconds += spent
                    timer.calls += 1

        def init(session: CameraSession, *args, **kwargs) -> None:
            original_init(session, *args, **kwargs)
            timer.sessions.add(session)

        CameraSession.feed, CameraSession.__init__ = feed, init  # type: ignore[method-assign]
        self._originals = (original_feed, original_init)

    def take(self) -> tuple[float, int]:
        with self.lock:
            out = (self.seconds, self.calls)
            self.seconds, self.calls = 0.0, 0
        return out

    def restore(self) -> None:
        CameraSession.feed, CameraSession.__init__ = self._originals  # type: ignore[method-assign]


def vm_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def dir_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass  # deleted by the housekeeper while we walked
    return total


def acknowledge_all(outbox: Outbox) -> int:
    """The stand-in for the broker: every pending row is acknowledged."""
    acked = 0
    while True:
        batch = outbox.pending(limit=500)
        if not batch:
            return acked
        for message in batch:
            outbox.mark_sent(message.event_id)
        acked += len(batch)


# -- verdicts ----------------------------------------------------------------------------------------
def flatness(x_h: list[float], y: list[float], skip: float = 0.25, tolerance: float = 0.10) -> dict:
    """Slope (per camera hour) over the last (1 - skip) of the run and the change it implies over that
    stretch, relative to the mean there."""
    n = len(x_h)
    start = int(n * skip)
    xs, ys = np.asarray(x_h[start:], float), np.asarray(y[start:], float)
    if len(xs) < 3 or np.ptp(xs) == 0:
        return {"verdict": "too few samples"}
    slope, _ = np.polyfit(xs, ys, 1)
    span = float(xs[-1] - xs[0])
    mean = float(np.mean(ys))
    scale = max(abs(mean), 1e-9)
    relative = float(slope * span / scale)
    return {"slope_per_camera_hour": round(float(slope), 4), "mean": round(mean, 3),
            "change_over_window": round(float(slope * span), 3), "relative_change": round(relative, 4),
            "window_camera_h": round(span, 2), "verdict": "flat" if abs(relative) < tolerance else "drifting"}


def plot(samples: list[dict], series: dict[str, str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["camera_h"] for s in samples]
    fig, axes = plt.subplots((len(series) + 1) // 2, 2, figsize=(12, 2.4 * ((len(series) + 1) // 2)), sharex=True)
    for ax, (key, label) in zip(axes.flat, series.items(), strict=False):
        ax.plot(x, [s[key] for s in samples], lw=1)
        ax.axvline(x[len(x) // 4] if x else 0, color="grey", ls=":", lw=0.8)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(series):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("camera hours")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


SERIES = {  # key → label; the verdicts are computed for these
    "rss_mib": "resident memory (MiB)",
    "feed_ms": "camera thread time per frame (ms)",
    "frames_per_s": "frames analysed per wall second",
    "inferences_per_s": "inferences per wall second",
    "outbox_pending": "outbox rows pending",
    "outbox_sent": "outbox rows sent (kept until purged)",
    "outbox_file_kib": "outbox file (KiB)",
    "data_dir_mib": "data dir on disk (MiB)",
    "clips_mib": "clip segments (MiB)",
    "live_tracks": "live tracks (all cameras)",
    "pending_frames": "frames waiting for the detector",
    "open_fds": "open file descriptors",
    "threads": "threads",
    "reconnects": "reconnects (cumulative)",
    "load_1m": "load average (1 min)",
}
GROWING = {"reconnects"}  # cumulative by nature: no flatness verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--camera-hours", type=float, default=24.0, help="camera time to cover (all cameras)")
    parser.add_argument("--max-wall-s", type=float, default=3000.0, help="stop here even if short of camera time")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--speed", type=float, default=8.0, help="footage seconds per wall second, per camera")
    parser.add_argument("--content-fps", type=float, default=2.0, help="the camera's analysed rate in footage time")
    parser.add_argument("--precision", choices=["FP32", "INT8"], default="INT8")
    parser.add_argument("--interval", type=float, default=10.0, help="wall seconds between samples")
    parser.add_argument("--restart-every", type=float, default=300.0, help="wall seconds between server restarts")
    parser.add_argument("--down-s", type=float, default=3.0, help="how long the server stays down")
    parser.add_argument("--clips-quota-mb", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--name", default="soak")
    args = parser.parse_args()
    tune_gateway_process()  # what `vigia edge run` sets before its threads start
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # SIGTERM ends the run through the `finally` below: the RTSP server subprocesses must not outlive it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    why = gstreamer_available()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    stream_fps = args.content_fps * args.speed
    if abs(stream_fps - round(stream_fps)) > 1e-9:
        parser.error("content_fps * speed must be a whole number of frames per second")
    model_dir = find_prepared(GATEWAY_MODEL, args.precision)
    tmp = Path(tempfile.mkdtemp(prefix="vigia-soak-"))
    print(f"footage → {tmp}", flush=True)
    frames = footage_frames(vtest_path(), args.content_fps)
    moving = int(MOTION_S * args.content_fps)
    pass_wall_s = len(frames) / stream_fps
    # Each connection plays the file from its start: it must outlast the longest connection.
    loops = max(2, int((args.restart_every + 120) / pass_wall_s) + 2)
    # One server per camera, each pass rotated by a fraction of it: cameras do not all see people at once.
    servers = []
    for i in range(args.cameras):
        shift = i * len(frames) // args.cameras
        media = write_stream_file(frames[shift:] + frames[:shift], tmp / f"soak{i}.mkv", round(stream_fps), loops)
        servers.append(RtspServer(media))
    print(f"{len(frames)} frames a pass ({pass_wall_s:.0f} s of wall time), {loops} passes, "
          f"{media.stat().st_size / 1e6:.1f} MB a camera", flush=True)
    for server in servers:
        server.start()
    data_dir = tmp / "data"
    retention = RetentionSettings(clips_quota_mb=args.clips_quota_mb, min_free_mb=0, min_age_s=5.0,
                                  outbox_sent_retention_s=0.0, interval_s=5.0)
    settings = AgentSettings(data_dir=data_dir, precision=args.precision, retention=retention,
                             stall_timeout_s=3.0, reconnect_min_s=0.2, reconnect_max_s=2.0)
    cfg = accelerated_config(args.content_fps, args.speed)
    detector = PersonDetector(model_dir, mode="throughput", precision=settings.inference_precision)
    outbox = Outbox(settings.outbox_path)
    agent = EdgeAgent(settings, StaticConfig(GatewayConfig(defaults=cfg)), detector, outbox)
    housekeeper = Housekeeper(retention, settings.clips_dir, outbox, None).start()
    timer = FeedTimer()
    sources = {f"cam{i}": server.url for i, server in enumerate(servers)}
    supervisor = Supervisor(agent, sources).start()

    samples: list[dict] = []
    restarts = 0
    started = last = time.monotonic()
    next_restart = started + args.restart_every
    acked = 0
    calls_before = detector.calls
    reports: dict[int, object] = {}  # cumulative over the run: frames fed, and those the detector saw
    try:
        while True:
            time.sleep(max(0.0, last + args.interval - time.monotonic()))
            now = time.monotonic()
            if now >= next_restart:
                for server in servers:
                    server.kill()
                time.sleep(args.down_s)
                for server in servers:
                    server.start()
                restarts += 1
                next_restart = now + args.restart_every
            acked += acknowledge_all(outbox)
            statuses = agent.camera_status()
            feed_s, feeds = timer.take()
            interval = time.monotonic() - last
            last = time.monotonic()
            calls_before_next = detector.calls
            received = sum(s.frames for s in statuses.values())
            sessions = list(timer.sessions)
            for session in sessions:  # one report a camera, shared by its successive connections
                reports[id(session.report)] = session.report
            reports_frames = sum(r.frames_sampled for r in reports.values())
            reports_gated = sum(r.detector_frames for r in reports.values())
            stats = outbox.stats()
            sample = {
                "wall_s": round(last - started, 1),
                "camera_h": received / args.content_fps / 3600,
                "frames_received": received,
                "frames_dropped": sum(s.dropped_frames for s in statuses.values()),
                "frames_per_s": round(feeds / interval, 2),
                "frames_analysed": reports_frames,
                "detector_frames": reports_gated,
                "inferences_per_s": round((detector.calls - calls_before) / interval, 2),
                "feed_ms": round(1000 * feed_s / feeds, 3) if feeds else 0.0,
                "rss_mib": round(vm_rss_mib(), 1),
                "open_fds": len(os.listdir("/proc/self/fd")),
                "threads": threading.active_count(),
                "outbox_pending": stats.pending, "outbox_sent": stats.sent,
                "outbox_file_kib": round(stats.file_bytes / 1024, 1),
                "data_dir_mib": round(dir_bytes(data_dir) / 2**20, 2),
                "clips_mib": round(dir_bytes(settings.clips_dir) / 2**20, 2),
                "live_tracks": sum(len(s.tracker.active) for s in sessions if not s.closed),
                "pending_frames": sum(len(s.pending) for s in sessions if not s.closed),
                "sessions": sum(1 for s in sessions if not s.closed),
                "candidates": sum(s.candidates for s in statuses.values()),
                "reconnects": sum(s.reconnects for s in statuses.values()),
                "server_restarts": restarts,
                "acknowledged": acked,
                "held_in_memory": agent.held_candidates,
                "load_1m": os.getloadavg()[0],
            }
            calls_before = calls_before_next
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            if sample["camera_h"] >= args.camera_hours or last - started >= args.max_wall_s:
                break
    finally:
        supervisor.stop()
        supervisor.wait(timeout=15)
        housekeeper.stop()
        for server in servers:
            server.kill()
        timer.restore()
        shutil.rmtree(tmp, ignore_errors=True)

    verdicts = {key: flatness([s["camera_h"] for s in samples], [s[key] for s in samples])
                for key in SERIES if key not in GROWING}
    last_sample = samples[-1] if samples else {}
    result = {
        "benchmark": "soak", "model": GATEWAY_MODEL, "precision": args.precision,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(),
                    "note": "2 cores shared with other engineers' test runs: see load_1m per sample"},
        "setup": {"cameras": args.cameras, "speed": args.speed, "content_fps": args.content_fps,
                  "stream_fps": stream_fps, "frame": [WIDTH, int(frames[0].shape[0])],
                  "motion_fraction": round(moving / (CYCLE_S * args.content_fps), 3),
                  "restart_every_s": args.restart_every, "down_s": args.down_s,
                  "clips_quota_mb": args.clips_quota_mb, "camera_config": cfg.model_dump(mode="json"),
                  "camera_time": "sum over cameras of frames received by the live source / content_fps"},
        "totals": {"wall_s": last_sample.get("wall_s"), "camera_h": round(last_sample.get("camera_h", 0), 2),
                   "frames_received": last_sample.get("frames_received"),
                   "frames_dropped": last_sample.get("frames_dropped"),
                   "frames_analysed": last_sample.get("frames_analysed"),
                   "camera_h_analysed": round((last_sample.get("frames_analysed") or 0) / args.content_fps / 3600, 2),
                   "detector_frames": last_sample.get("detector_frames"),
                   "detector_frame_fraction": round((last_sample.get("detector_frames") or 0)
                                                    / max(1, last_sample.get("frames_analysed") or 0), 3),
                   "inferences": detector.calls,
                   "candidates": last_sample.get("candidates"), "acknowledged": acked,
                   "server_restarts": restarts, "reconnects": last_sample.get("reconnects"),
                   "camera_crashes": dict(supervisor.crashes),
                   "load_1m_mean": round(float(np.mean([s["load_1m"] for s in samples])), 2) if samples else None},
        "verdicts": verdicts,
        "samples": samples,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{args.name}.json"
    json_path.write_text(json.dumps(result, indent=1))
    title = (f"soak: {args.cameras} cameras x {args.speed:g}x, {result['totals']['camera_h']} camera-h in "
             f"{result['totals']['wall_s']:.0f} s wall, {args.precision}, {restarts} server restarts")
    plot(samples, SERIES, args.out / f"{args.name}.png", title)
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    print(f"written {json_path} and {args.name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
