"""`vigia config set | show`: per-camera settings through the gateway's `vigia-config` named shadow.

`field=null` deletes the field from desired: the camera falls back to its default. A broker, endpoint or
credential problem, or a refused value, is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable


def add_shadow_backend_options(p: argparse.ArgumentParser, *, client_id: str, thing_required: bool = True,
                               thing_help: str = "IoT thing name of the gateway") -> None:
    """How a command reaches a gateway's named shadow (`_backend` reads these): shared by config and tune."""
    p.add_argument("--thing", required=thing_required, help=thing_help)
    p.add_argument("--backend", choices=["iot", "mqtt"], default=os.environ.get("VIGIA_CONFIG_BACKEND", "iot"),
                   help="iot: AWS IoT iot-data (AWS_ENDPOINT_URL honoured); mqtt: local shadow service")
    p.add_argument("--mqtt-host", default="127.0.0.1")
    p.add_argument("--mqtt-port", type=int, default=8883)
    p.add_argument("--mqtt-ca", help="CA file (enables TLS)")
    p.add_argument("--mqtt-cert", help="client certificate of the operator/cloud identity")
    p.add_argument("--mqtt-key", help="client key")
    p.add_argument("--mqtt-client-id", default=client_id)
    p.add_argument("--region", help="AWS region for the iot backend")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="change or show a gateway's camera settings (named shadow)")
    csub = parser.add_subparsers(dest="config_command", required=True)

    def backend_options(p: argparse.ArgumentParser) -> None:
        add_shadow_backend_options(p, client_id="vigia-config-cli")

    setp = csub.add_parser("set", help="validate and write desired settings, e.g. threshold=0.6 "
                                       "filters.min_area=0.001; field=null removes the field (back to its default)")
    backend_options(setp)
    setp.add_argument("--camera", action="append", default=[], help="camera id (repeatable)")
    setp.add_argument("--all-cameras", action="store_true", help="every camera the gateway has or reports")
    setp.add_argument("--defaults", action="store_true", help="the defaults for unlisted cameras")
    setp.add_argument("assignments", nargs="+", metavar="FIELD=VALUE")
    setp.set_defaults(func=_one_line_errors(_set))

    show = csub.add_parser("show", help="desired beside reported per camera; drift highlighted")
    backend_options(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_one_line_errors(_show))


def _one_line_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """What an operator can fix (broker down, certificate refused, bad value, shadow kept changing) is one
    line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        from cloud.config_admin import ConflictError, ShadowAccessError

        try:
            return command(args)
        except (ShadowAccessError, ConflictError, ValueError, OSError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"vigia config {args.config_command}: error: {message}", file=sys.stderr)
            return 2

    return run


def _backend(args: argparse.Namespace):
    if args.backend == "mqtt":
        from cloud.config_admin import MqttShadowBackend
        from cloud.shadow_service import BrokerSettings

        return MqttShadowBackend(BrokerSettings(host=args.mqtt_host, port=args.mqtt_port,
                                                client_id=args.mqtt_client_id, ca_file=args.mqtt_ca,
                                                cert_file=args.mqtt_cert, key_file=args.mqtt_key))
    from cloud.config_admin import IotDataBackend

    return IotDataBackend(region=args.region)


def _set(args: argparse.Namespace) -> int:
    from cloud.config_admin import ConfigAdmin, parse_assignments

    patch = parse_assignments(args.assignments)
    backend = _backend(args)
    try:
        accepted = ConfigAdmin(backend).set(args.thing, patch, cameras=args.camera, all_cameras=args.all_cameras,
                                            defaults=args.defaults)
    finally:
        if hasattr(backend, "close"):
            backend.close()
    print(json.dumps({"thing": args.thing, "version": accepted.get("version"),
                      "desired": accepted.get("state", {}).get("desired")}))
    return 0


def _show(args: argparse.Namespace) -> int:
    from cloud.config_admin import ConfigAdmin, format_views

    backend = _backend(args)
    try:
        admin = ConfigAdmin(backend)
        views = admin.show(args.thing)
        version = (backend.get(args.thing, admin.shadow) or {}).get("version")
    finally:
        if hasattr(backend, "close"):
            backend.close()
    if args.json:
        print(json.dumps([{"camera": v.camera_id, "desired": v.desired, "reported": v.reported,
                           "drift": {k: list(d) for k, d in v.drift.items()}, "error": v.error} for v in views]))
    else:
        print(format_views(args.thing, views, version))
    return 1 if any(v.drift or v.error for v in views) else 0
