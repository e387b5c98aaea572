"""`vigia edge run`: the gateway agent, a service for every camera of the gateway.

`--source` runs one camera (a video file, a folder of clips, an rtsp/http URL); `--config gateway.json`
with a `sources` map runs them all in one process, sharing one detector. Without `--thing` it runs on the
embedded default (candidates stay in the local outbox). With `--thing` it connects a transport (IoT Core
with mTLS, Greengrass IPC inside a component, or any MQTT broker) in the background, drains the outbox in
order, reports per-camera health in the heartbeat and takes its per-camera settings from the
`vigia-config` named shadow. A broker that is down is an outbox that fills, never a crash.

Exit status: 0 when the sources are done or a signal stopped the agent; 2 for a configuration error
(bad gateway file, no source, invalid camera id, models not prepared); 1 when every clip failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from contracts import redact_uri

log = logging.getLogger("vigia.edge")


class ConfigurationError(RuntimeError):
    """A fatal configuration problem: the agent exits with status 2 and one clear line."""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("edge", help="the gateway agent")
    esub = parser.add_subparsers(dest="edge_command", required=True)
    run = esub.add_parser("run", help="run the first pass over every camera and queue candidates")
    run.add_argument("--source", help="one camera: video file, folder of clips, or rtsp:// / http:// URL")
    run.add_argument("--config", type=Path,
                     help="gateway file: {'sources': {camera: source}, 'defaults': …, 'cameras': …}")
    run.add_argument("--camera", help="camera id for --source (default: from the source name)")
    run.add_argument("--watch", type=float, metavar="SECONDS",
                     help="keep watching folders for new clips, polling every SECONDS (a service, not a batch)")
    run.add_argument("--data-dir", type=Path, default=Path("var/edge"), help="outbox, clips, memories, ledger")
    run.add_argument("--gateway-id", default="vigia-local", help="IoT thing name carried in candidates")
    run.add_argument("--model-dir", type=Path, help="prepared IR folder (default: the catalog's gateway model)")
    run.add_argument("--precision", choices=["FP32", "INT8"], default="FP32")
    run.add_argument("--clip-mode", choices=["segment", "source"], default="segment",
                     help="segment: re-encode the event's frames; source: hand over the camera's clip file as is")
    run.add_argument("--no-ledger", action="store_true", help="process clips even if the ledger says they are done")
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
                     help="after finite sources, wait this long for the outbox to drain")
    clips = run.add_argument_group("clip upload (with --thing: where the cloud reads each candidate's clip)")
    clips.add_argument("--clip-transport", choices=["local", "s3", "kvs"], default="local",
                       help="local: the cloud reads the clip folder (embedded); s3: upload under "
                            "gateways/{thing}/ in --clip-bucket; kvs: Kinesis Video, one stream per camera")
    clips.add_argument("--clip-bucket", help="media bucket for --clip-transport s3")
    clips.add_argument("--kvs-region", help="Kinesis Video region (default: the AWS default chain's)")
    clips.add_argument("--kvs-endpoint", help="Kinesis Video control-plane endpoint override")
    run.set_defaults(func=_run)


def build_clip_uploader(args: argparse.Namespace):
    """The clip uploader `--clip-transport` names (credentials: the AWS default chain, i.e. the Greengrass
    token exchange service on a gateway); a missing bucket or thing is a configuration error."""
    from edge_agent.clip_upload import LocalClips

    kind = getattr(args, "clip_transport", "local")
    if kind == "local":
        return LocalClips()
    if not args.thing:
        raise ConfigurationError(f"--clip-transport {kind} needs --thing (clips are uploaded before publishing)")
    if kind == "s3":
        if not args.clip_bucket:
            raise ConfigurationError("--clip-transport s3 needs --clip-bucket")
        from edge_agent.clip_upload.s3 import S3Uploader

        return S3Uploader(args.clip_bucket, args.thing)
    from edge_agent.clip_upload.kvs import KvsUploader  # lazily: only the kvs transport needs it

    return KvsUploader(args.thing, region=args.kvs_region, endpoint_url=args.kvs_endpoint)


def resolve_model_dir(settings) -> Path:
    """The prepared model; never downloaded here (a gateway is air-gapped): prepare it first."""
    from models.prepare import find_prepared

    if settings.model_dir is not None:
        return settings.model_dir
    try:
        return find_prepared(settings.model_id, settings.precision)
    except FileNotFoundError as exc:
        raise ConfigurationError(str(exc)) from exc


def build_agent(args: argparse.Namespace, on_candidate=None, config=None, ledger: bool = True):
    """Shared by `edge run` and the demo: settings, config, detector, outbox, ledger."""
    from edge_agent.agent import EdgeAgent
    from edge_agent.config_provider import StaticConfig
    from edge_agent.ledger import ClipLedger
    from edge_agent.outbox import Outbox
    from edge_agent.settings import AgentSettings
    from models.detector import PersonDetector

    settings = AgentSettings(gateway_id=getattr(args, "thing", None) or args.gateway_id, data_dir=args.data_dir,
                             precision=args.precision, model_dir=args.model_dir,
                             clip_mode=getattr(args, "clip_mode", "segment"))
    if config is None:
        config = StaticConfig.from_file(args.config) if getattr(args, "config", None) else StaticConfig()
    detector = PersonDetector(resolve_model_dir(settings), device=settings.device, mode="throughput",
                              score_floor=settings.score_floor, precision=settings.inference_precision)
    outbox = Outbox(settings.outbox_path)
    clip_ledger = ClipLedger(settings.ledger_path) if ledger else None
    return EdgeAgent(settings, config, detector, outbox, on_candidate=on_candidate, ledger=clip_ledger)


def _sources(args: argparse.Namespace):
    """camera id → source, and the starting GatewayConfig, from --source/--camera and the gateway file."""
    from contracts import validate_camera_id
    from edge_agent.agent import camera_from_source
    from edge_agent.gateway_file import GatewayFileError, load_gateway_file

    gateway = None
    if args.config:
        try:
            gateway = load_gateway_file(args.config)
        except GatewayFileError as exc:
            raise ConfigurationError(str(exc)) from exc
    sources = dict(gateway.sources) if gateway else {}
    if args.source is not None:
        if not args.source.strip():
            raise ConfigurationError("--source is empty: give a video file, a folder of clips or a URL")
        try:
            camera_id = validate_camera_id(args.camera or camera_from_source(args.source))
        except ValueError as exc:
            raise ConfigurationError(f"--camera: {exc}") from exc
        sources[camera_id] = args.source
    if not sources:
        raise ConfigurationError("no camera to run: give --source, or --config with a 'sources' map")
    for camera_id, source in sources.items():
        _check_source(camera_id, source, args.watch)
    return sources, (gateway.config if gateway else None)


def _check_source(camera_id: str, source: str, watch: float | None) -> None:
    """A file or folder source that cannot work is a configuration error at start, not a camera that fails
    later (live URLs are checked by connecting, and retried for ever: a camera may come up after us)."""
    from edge_agent.sources import SourceError, is_live, iter_clip_uris

    if is_live(source):
        return
    try:
        if watch is not None:
            if not Path(source).is_dir():
                raise SourceError(f"{source}: --watch needs a folder of clips")
        else:
            next(iter_clip_uris(source))
    except SourceError as exc:
        raise ConfigurationError(f"camera {camera_id!r}: {exc}") from exc


def _connect(args: argparse.Namespace, initial, stop: threading.Event):
    """Transport, shadow-backed config store and shadow sync for `--thing`. The link comes up in the
    background: a broker that is down at start leaves the agent running on its last persisted config."""
    from edge_agent.config_store import ConfigStore
    from edge_agent.shadow_sync import ShadowSync
    from edge_agent.transport import TlsSettings, TransportSettings, make_transport
    from edge_agent.transport.base import TransportError

    tls = None
    if args.ca or args.cert:
        tls = TlsSettings(ca_file=args.ca, cert_file=args.cert, key_file=args.key)
    transport = make_transport(TransportSettings(thing_name=args.thing, kind=args.transport, host=args.mqtt_host,
                                                 port=args.mqtt_port, tls=tls))
    store = ConfigStore(path=args.data_dir / "config.json", initial=initial)
    sync = ShadowSync(transport, args.thing, store)

    def come_up() -> None:
        try:
            transport.connect(timeout=3)
        except TransportError as exc:
            log.warning("broker unreachable; candidates wait in the outbox and the link keeps retrying",
                        extra={"host": args.mqtt_host, "error": redact_uri(str(exc))})
            while not stop.is_set() and not transport.is_connected:
                stop.wait(0.5)
            if stop.is_set():
                return
            log.info("broker reachable", extra={"host": args.mqtt_host})
        sync.start()

    threading.Thread(target=come_up, name="iot-connect", daemon=True).start()
    return transport, store, sync


def _run(args: argparse.Namespace) -> int:
    try:
        return _run_agent(args)
    except ConfigurationError as exc:
        print(f"vigia edge run: {redact_uri(str(exc))}", file=sys.stderr)
        log.error("configuration error; the agent cannot start", extra={"error": redact_uri(str(exc))})
        return 2


def _run_agent(args: argparse.Namespace) -> int:
    from edge_agent.process_tuning import tune_gateway_process
    from edge_agent.retention import Housekeeper
    from edge_agent.supervisor import Supervisor

    tune_gateway_process()
    sources, initial = _sources(args)
    uploader = build_clip_uploader(args)  # before connecting: a bad option fails fast
    stop = threading.Event()
    transport = sync = publisher = None
    config = None
    if args.thing:
        transport, config, sync = _connect(args, initial, stop)
    elif initial is not None:
        from edge_agent.config_provider import StaticConfig

        config = StaticConfig(initial)
    try:
        agent = build_agent(args, config=config, ledger=not args.no_ledger)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(str(exc)) from exc
    housekeeper = Housekeeper(agent.settings.retention, agent.settings.clips_dir, agent.outbox, agent.ledger).start()
    fp_sync = None
    if config is not None:  # the shadow (or the gateway file) may name each camera's false-positive memory
        from edge_agent.fp_memory_sync import FpMemorySync

        fp_sync = FpMemorySync(config, agent.fp_memories).start()
    if transport is not None:
        from edge_agent.publisher import OutboxPublisher

        publisher = OutboxPublisher(agent.outbox, transport, args.thing, heartbeat_interval_s=args.heartbeat_interval,
                                    config_version=lambda: config.version,
                                    camera_status=agent.camera_status, uploader=uploader,
                                    clips_root=agent.settings.clips_dir).start()
        agent.on_candidate = lambda _c: publisher.notify()

    def on_signal(signum, _frame) -> None:
        log.info("signal received; stopping", extra={"signal": signal.Signals(signum).name})
        agent.stop()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    supervisor = Supervisor(agent, sources, watch_s=args.watch).start()
    try:
        while not supervisor.wait(timeout=1.0):
            pass
    finally:
        stop.set()
        housekeeper.stop()
        if fp_sync is not None:
            fp_sync.stop()
        if transport is not None and not transport.is_connected:
            log.warning("broker unreachable at exit; candidates stay in the outbox for the next start",
                        extra={"pending": agent.outbox.count_pending()})
        if publisher is not None:
            if not agent.stopping and not publisher.wait_idle(args.drain_timeout):
                log.warning("outbox not drained; it is kept and sent on the next start",
                            extra={"pending": agent.outbox.count_pending()})
            publisher.stop()
        if sync is not None:
            sync.stop()
        if transport is not None:
            transport.disconnect()
        if agent.held_candidates:
            log.error("candidates still held in memory at exit (outbox unwritable)",
                      extra={"held": agent.held_candidates})
    reports = [r for cam in supervisor.reports.values() for r in cam]
    for report in reports:
        print(json.dumps({
            "clip": redact_uri(report.clip), "camera_id": report.camera_id, "frames_sampled": report.frames_sampled,
            "detector_frames": report.detector_frames, "detector_calls": report.detector_calls,
            "candidates": [{"event_id": c.event_id, "start_s": c.start_offset_s, "end_s": c.end_offset_s,
                            "score": c.score, "clip": c.clip.uri if c.clip else None} for c in report.candidates],
            "candidate_count": report.candidate_count, "dropped_tracks": report.dropped_tracks,
            "skipped": report.skipped, "error": report.error,
        }))
    processed = [r for r in reports if r.skipped is None]
    if supervisor.failed:
        return 1
    return 1 if processed and all(r.error for r in processed) else 0
