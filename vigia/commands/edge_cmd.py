"""`vigia edge run`: the gateway agent over a file, a folder of clips or an RTSP stream."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("edge", help="the gateway agent")
    esub = parser.add_subparsers(dest="edge_command", required=True)
    run = esub.add_parser("run", help="run the first pass over a source and queue candidates")
    run.add_argument("--source", required=True, help="video file, folder of clips, or rtsp:// URL")
    run.add_argument("--config", type=Path, help="GatewayConfig JSON (default: built-in defaults)")
    run.add_argument("--camera", help="camera id (default: from the source name)")
    run.add_argument("--data-dir", type=Path, default=Path("var/edge"), help="outbox, clips, memories")
    run.add_argument("--gateway-id", default="vigia-local", help="IoT thing name")
    run.add_argument("--model-dir", type=Path, help="prepared IR folder (default: the catalog's gateway model)")
    run.add_argument("--precision", choices=["FP32", "INT8"], default="FP32")
    run.set_defaults(func=_run)


def build_agent(args: argparse.Namespace, on_candidate=None):
    """Shared by `edge run` and the demo: settings, config, detector, outbox."""
    from edge_agent.agent import EdgeAgent
    from edge_agent.config_provider import StaticConfig
    from edge_agent.outbox import Outbox
    from edge_agent.settings import AgentSettings
    from models.detector import PersonDetector
    from models.prepare import find_prepared, prepare

    settings = AgentSettings(gateway_id=args.gateway_id, data_dir=args.data_dir, precision=args.precision,
                             model_dir=args.model_dir)
    config = StaticConfig.from_file(args.config) if args.config else StaticConfig()
    model_dir = settings.model_dir
    if model_dir is None:
        try:
            model_dir = find_prepared(settings.model_id, settings.precision)
        except FileNotFoundError:
            model_dir, _ = prepare(settings.model_id, settings.precision, progress=print)
    detector = PersonDetector(model_dir, device=settings.device, mode="throughput", score_floor=settings.score_floor)
    outbox = Outbox(settings.outbox_path)
    return EdgeAgent(settings, config, detector, outbox, on_candidate=on_candidate)


def _run(args: argparse.Namespace) -> int:
    agent = build_agent(args)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    reports = agent.run_source(args.source, args.camera)
    for report in reports:
        print(json.dumps({
            "clip": report.clip, "camera_id": report.camera_id, "frames_sampled": report.frames_sampled,
            "detector_frames": report.detector_frames, "detector_calls": report.detector_calls,
            "candidates": [{"event_id": c.event_id, "start_s": c.start_offset_s, "end_s": c.end_offset_s,
                            "score": c.score, "clip": c.clip.uri if c.clip else None} for c in report.candidates],
            "dropped_tracks": report.dropped_tracks, "error": report.error,
        }))
    return 1 if reports and all(r.error for r in reports) else 0
