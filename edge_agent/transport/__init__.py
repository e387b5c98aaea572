"""Messaging port and its adapters; `make_transport` picks one from settings and the environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from edge_agent.transport.base import (
    Backoff,
    MessageCallback,
    NotConnectedError,
    PublishRejectedError,
    TlsSettings,
    Transport,
    TransportError,
    TransportSettings,
    topic_matches,
)
from edge_agent.transport.greengrass_ipc import greengrass_available

log = logging.getLogger(__name__)

__all__ = [
    "Backoff",
    "MessageCallback",
    "NotConnectedError",
    "PublishRejectedError",
    "TlsSettings",
    "Transport",
    "TransportError",
    "TransportSettings",
    "choose_kind",
    "make_transport",
    "topic_matches",
]


def choose_kind(settings: TransportSettings, environ: Mapping[str, str] | None = None) -> str:
    """Which adapter `auto` means here: Greengrass IPC inside a component, IoT Core with a device
    certificate and an `*.amazonaws.com` endpoint, otherwise paho (any broker, TLS optional)."""
    if settings.kind != "auto":
        return settings.kind
    env = os.environ if environ is None else environ
    if greengrass_available(dict(env)):
        return "greengrass"
    if settings.tls and settings.tls.cert_file and settings.host.endswith(".amazonaws.com"):
        return "iotcore"
    return "paho"


def make_transport(settings: TransportSettings, environ: Mapping[str, str] | None = None) -> Transport:
    """Build (not connect) the transport; adapters import their SDK lazily so a gateway installs only one."""
    kind = choose_kind(settings, environ)
    log.info("transport selected", extra={"transport": kind, "thing": settings.thing_name})
    if kind == "greengrass":
        from edge_agent.transport.greengrass_ipc import GreengrassIpcTransport

        return GreengrassIpcTransport(settings)
    if kind == "iotcore":
        from edge_agent.transport.iotcore import IotCoreTransport

        return IotCoreTransport(settings)
    from edge_agent.transport.paho_transport import PahoTransport

    return PahoTransport(settings)
