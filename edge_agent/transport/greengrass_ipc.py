"""Greengrass IPC adapter: the agent runs as a Greengrass component and talks through the nucleus.

- ordinary topics go to IoT Core through the nucleus's MQTT connection (PublishToIoTCore /
  SubscribeToIoTCore, `aws.greengrass.ipc.mqttproxy`); the nucleus's spooler owns reconnects;
- the named config shadow goes through the local shadow service (`aws.greengrass.ShadowManager`
  GetThingShadow / UpdateThingShadow), which syncs with the cloud shadow. Requests published on the
  standard shadow topics (`.../get`, `.../update`) are turned into those IPC calls and their answers are
  handed to subscribers as `.../get/accepted`, `.../update/rejected` etc., so ShadowSync works unchanged;
  `update/delta` arrives over local publish/subscribe, where ShadowManager announces shadow events.

Nothing here can run outside a Greengrass core device (the IPC socket comes from the nucleus); the unit
tests inject a fake `GreengrassCoreIPCClientV2`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

from edge_agent.transport.base import (
    MessageCallback,
    NotConnectedError,
    PublishRejectedError,
    TransportError,
    TransportSettings,
    topic_matches,
)

log = logging.getLogger(__name__)

# $aws/things/{thing}/shadow/name/{shadow}/{get|update|delete}
_SHADOW_REQUEST = re.compile(r"^\$aws/things/([^/]+)/shadow/name/([^/]+)/(get|update|delete)$")
_SHADOW_ANY = re.compile(r"^\$aws/things/[^/]+/shadow/")
# ShadowManager publishes these on local pub/sub (the same names as IoT Core's)
_LOCAL_EVENTS = ("update/delta", "update/documents")


def greengrass_available(environ: dict[str, str]) -> bool:
    """True inside a Greengrass component: the nucleus hands these two variables to its children."""
    return bool(environ.get("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT") and environ.get("SVCUID"))


class GreengrassIpcTransport:
    def __init__(self, settings: TransportSettings, ipc_client: Any | None = None) -> None:
        self.settings = settings
        self._ipc = ipc_client
        self._subs: list[tuple[str, MessageCallback]] = []
        self._operations: list[Any] = []  # stream operations, closed on disconnect
        self._lock = threading.Lock()
        self._connected = False

    def connect(self, timeout: float = 10.0) -> None:
        if self._ipc is None:
            try:
                from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

                self._ipc = GreengrassCoreIPCClientV2()
            except Exception as exc:
                raise TransportError(f"cannot connect to the Greengrass nucleus IPC socket: {exc}") from exc
        self._connected = True

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float | None = None) -> None:
        if not self._connected or self._ipc is None:
            raise NotConnectedError("Greengrass IPC is not connected")
        shadow = _SHADOW_REQUEST.match(topic)
        if shadow:
            self._shadow_request(topic, shadow.group(1), shadow.group(2), shadow.group(3), payload)
            return
        try:
            # returns once the nucleus accepted the message; for QoS 1 its spooler then owns delivery
            self._ipc.publish_to_iot_core(topic_name=topic, qos=str(qos), payload=payload)
        except Exception as exc:
            name = type(exc).__name__
            if name in ("UnauthorizedError",):
                raise PublishRejectedError(topic, name) from exc
            raise TransportError(f"PublishToIoTCore {topic!r} failed: {name}: {exc}") from exc

    def subscribe(self, topic_filter: str, callback: MessageCallback, qos: int = 1) -> None:
        if not self._connected or self._ipc is None:
            raise NotConnectedError("Greengrass IPC is not connected")
        with self._lock:
            self._subs.append((topic_filter, callback))
        if _SHADOW_ANY.match(topic_filter):
            # shadow answers are produced locally (see _shadow_request); events come over local pub/sub
            if topic_filter.endswith(_LOCAL_EVENTS):
                _, op = self._ipc.subscribe_to_topic(
                    topic=topic_filter,
                    on_stream_event=lambda event, f=topic_filter: self._on_local_event(f, event),
                    on_stream_error=self._on_stream_error,
                )
                self._operations.append(op)
            return
        _, op = self._ipc.subscribe_to_iot_core(
            topic_name=topic_filter,
            qos=str(qos),
            on_stream_event=self._on_iot_core_message,
            on_stream_error=self._on_stream_error,
        )
        self._operations.append(op)

    def disconnect(self) -> None:
        for op in self._operations:
            try:
                op.close()
            except Exception:
                pass
        self._operations.clear()
        if self._ipc is not None and hasattr(self._ipc, "close"):
            try:
                self._ipc.close()
            except Exception:
                pass
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    # --- shadow requests through ShadowManager ---------------------------------------------------------
    def _shadow_request(self, topic: str, thing: str, shadow: str, op: str, payload: bytes) -> None:
        try:
            request = json.loads(payload or b"{}")
        except ValueError:
            request = {}
        token = request.get("clientToken") if isinstance(request, dict) else None
        try:
            if op == "get":
                response = self._ipc.get_thing_shadow(thing_name=thing, shadow_name=shadow)
            elif op == "update":
                response = self._ipc.update_thing_shadow(thing_name=thing, shadow_name=shadow, payload=payload)
            else:
                response = self._ipc.delete_thing_shadow(thing_name=thing, shadow_name=shadow)
        except Exception as exc:
            code = {"ResourceNotFoundError": 404, "ConflictError": 409, "InvalidArgumentsError": 400,
                    "UnauthorizedError": 401}.get(type(exc).__name__, 500)
            body = {"code": code, "message": str(getattr(exc, "message", None) or exc)}
            if token:
                body["clientToken"] = token
            self._dispatch(f"{topic}/rejected", json.dumps(body).encode())
            return
        doc = json.loads(response.payload or b"{}")
        if token and "clientToken" not in doc:
            doc["clientToken"] = token
        self._dispatch(f"{topic}/accepted", json.dumps(doc).encode())

    # --- stream callbacks ------------------------------------------------------------------------------
    def _on_iot_core_message(self, event: Any) -> None:
        message = event.message
        self._dispatch(message.topic_name, bytes(message.payload or b""))

    def _on_local_event(self, topic_filter: str, event: Any) -> None:
        if event.binary_message is not None:
            topic = getattr(event.binary_message.context, "topic", None) or topic_filter
            self._dispatch(topic, bytes(event.binary_message.message or b""))
        elif event.json_message is not None:
            topic = getattr(event.json_message.context, "topic", None) or topic_filter
            self._dispatch(topic, json.dumps(event.json_message.message).encode())

    def _on_stream_error(self, error: Exception) -> bool:
        log.warning("greengrass ipc stream error", extra={"error": f"{type(error).__name__}: {error}"})
        return False  # keep the stream open

    def _dispatch(self, topic: str, payload: bytes) -> None:
        with self._lock:
            subs = list(self._subs)
        for topic_filter, callback in subs:
            if topic_matches(topic_filter, topic):
                try:
                    callback(topic, payload)
                except Exception:
                    log.exception("message handler failed", extra={"topic": topic})
