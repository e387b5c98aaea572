"""`vigia edge run`: the gateway agent over a file, a folder of clips or an RTSP stream.

Without `--thing` it runs on the embedded default (candidates stay in the local outbox). With `--thing`
it connects a transport (IoT Core with mTLS, Greengrass IPC inside a component, or any MQTT broker),
drains the outbox in order, and takes its per-camera settings from the `vigia-config` named shadow.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from pathlib import Path

log = logging.getLogger("vigia.edge")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("edge", help="the gateway agent")
    esub = parser.add_subparsers(dest="edge_command", required=True)
    run = esub.add_parser("run", help="run the first pass over a source and queue candidates")
    run.add_argument("--source", required=True, help="video file, folder of clips, or rtsp:// URL")
    run.add_argument("--config", type=Path, help="GatewayConfig JSON (default: built-in defaults)")
    run.add_argument("--camera", help="camera id (default: from the source name)")
    run.add_argument("--data-dir", type=Path, default=Path("var/edge"), help="outbox, clips, memories")
    run.add_argument("--gateway-id", default="vigia-local", help="IoT thing name carried in candidates")
    run.add_argument("--model-dir", type=Path, help="prepared IR folder (default: the catalog's gateway model)")
    run.add_argument("--precision", choices=["FP32", "INT8"], default="FP32")
    run.add_argument("--clip-mode", choices=["segment", "source"], default="segment",
                     help="segment: re-encode the event's frames; source: hand over the camera's clip file as is")
    iot = run.add_argument_group("IoT (omit --thing for the embedded default)")
    iot.add_argument("--thing", help="connect as this IoT thing: publish candidates, follow the config shadow")
    iot.add_argument("--transport", choices=["auto", "iotcore", "greengrass", "paho"], default="auto")
    iot.add_argument("--mqtt-host", default="127.0.0.1", help="broker host or IoT Core endpoint")
    iot.add_argument("--mqtt-port", type=int, help="default 8883 with TLS, else 1883")
    iot.add_argument("--ca", help="CA certificate (PEM)")
    iot.add_argument("--cert", help="device certificate (PEM)")
    iot.add_argument("--key", help="device private key (PEM)")
    iot.add_argument("--heartbeat-interval", type=float, default=60.0, help="seconds between heartbeats")
    iot.add_argument("--drain-timeout", type=float, default=30.0,
                     help="after a finite source, wait this long for the outbox to drain")
    run.set_defaults(func=_run)


def build_agent(args: argparse.Namespace, on_candidate=None, config=None):
    """Shared by `edge run` and the demo: settings, config, detector, outbox."""
    from edge_agent.agent import EdgeAgent
    from edge_agent.config_provider import StaticConfig
    from edge_agent.outbox import Outbox
    from edge_agent.settings import AgentSettings
    from models.detector import PersonDetector
    from models.prepare import find_prepared, prepare

    settings = AgentSettings(gateway_id=getattr(args, "thing", None) or args.gateway_id, data_dir=args.data_dir,
                             precision=args.precision, model_dir=args.model_dir,
                             clip_mode=getattr(args, "clip_mode", "segment"))
    if config is None:
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


def _connect(args: argparse.Namespace, data_dir: Path):
    """Transport, shadow-backed config store, shadow sync and outbox publisher for `--thing`."""
    from contracts import GatewayConfig
    from edge_agent.config_store import ConfigStore
    from edge_agent.shadow_sync import ShadowSync
    from edge_agent.transport import TlsSettings, TransportSettings, make_transport

    tls = None
    if args.ca or args.cert:
        tls = TlsSettings(ca_file=args.ca, cert_file=args.cert, key_file=args.key)
    transport = make_transport(TransportSettings(thing_name=args.thing, kind=args.transport, host=args.mqtt_host,
                                                 port=args.mqtt_port, tls=tls))
    initial = GatewayConfig.model_validate_json(args.config.read_text()) if args.config else None
    store = ConfigStore(path=data_dir / "config.json", initial=initial)
    transport.connect(timeout=10)
    sync = ShadowSync(transport, args.thing, store)
    sync.start()
    return transport, store, sync


def _run(args: argparse.Namespace) -> int:
    transport = sync = publisher = None
    config = None
    if args.thing:
        transport, config, sync = _connect(args, args.data_dir)
    agent = build_agent(args, config=config)
    if transport is not None:
        from edge_agent.publisher import OutboxPublisher

        publisher = OutboxPublisher(agent.outbox, transport, args.thing, heartbeat_interval_s=args.heartbeat_interval,
                                    config_version=lambda: config.version).start()
        agent.on_candidate = lambda _c: publisher.notify()
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    try:
        reports = agent.run_source(args.source, args.camera)
    finally:
        if publisher is not None:
            if not publisher.wait_idle(args.drain_timeout):
                log.warning("outbox not drained; it is kept and sent on the next start",
                            extra={"pending": agent.outbox.count_pending()})
            publisher.stop()
        if sync is not None:
            sync.stop()
        if transport is not None:
            transport.disconnect()
    for report in reports:
        print(json.dumps({
            "clip": report.clip, "camera_id": report.camera_id, "frames_sampled": report.frames_sampled,
            "detector_frames": report.detector_frames, "detector_calls": report.detector_calls,
            "candidates": [{"event_id": c.event_id, "start_s": c.start_offset_s, "end_s": c.end_offset_s,
                            "score": c.score, "clip": c.clip.uri if c.clip else None} for c in report.candidates],
            "dropped_tracks": report.dropped_tracks, "error": report.error,
        }))
    return 1 if reports and all(r.error for r in reports) else 0
