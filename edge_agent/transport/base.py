"""The messaging port: what the gateway needs from any MQTT-like link to the cloud.

Every adapter (IoT Core over awsiotsdk, Greengrass IPC, paho to any broker) implements `Transport`.
`publish` returns only once the broker acknowledged the message (PUBACK for QoS 1) and raises
otherwise, so the outbox deletes a message only when the cloud side really has it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

MessageCallback = Callable[[str, bytes], None]


class TransportError(RuntimeError):
    """A message could not be handed to the broker; the caller keeps it and retries."""


class NotConnectedError(TransportError):
    """The link is down right now (the adapter keeps reconnecting in the background)."""


class PublishRejectedError(TransportError):
    """The broker answered, but refused the message (e.g. MQTT 5 PUBACK NOT_AUTHORIZED)."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"publish to {topic!r} refused by the broker: {reason}")
        self.topic = topic
        self.reason = reason


@runtime_checkable
class Transport(Protocol):
    def connect(self, timeout: float = 10.0) -> None:
        """Start the link; returns once connected, raises TransportError after `timeout`.

        The adapter keeps reconnecting on its own afterwards (exponential backoff with jitter).
        """

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        """Send one message; returns once the broker acknowledged it, else raises TransportError."""

    def subscribe(self, topic_filter: str, callback: MessageCallback, qos: int = 1) -> None:
        """Deliver every message matching `topic_filter` to `callback(topic, payload)`.

        Subscriptions survive reconnects. Callbacks run on the adapter's network thread: keep them short.
        """

    def disconnect(self) -> None: ...

    @property
    def is_connected(self) -> bool: ...


class TlsSettings(BaseModel):
    """Mutual-TLS files; paths only, never key material in settings or logs."""

    model_config = ConfigDict(extra="forbid")

    ca_file: str | None = Field(default=None, description="CA bundle that signed the broker's certificate")
    cert_file: str | None = Field(default=None, description="this gateway's client certificate (PEM)")
    key_file: str | None = Field(default=None, description="this gateway's private key (PEM)")


class TransportSettings(BaseModel):
    """How the gateway reaches the cloud. `kind='auto'` picks Greengrass IPC inside a component."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["auto", "iotcore", "greengrass", "paho"] = Field(
        default="auto",
        description="auto: greengrass when the nucleus IPC socket is in the environment, iotcore when a "
        "client certificate is set, otherwise paho",
    )
    thing_name: str = Field(min_length=1, max_length=128, description="IoT thing name of this gateway")
    client_id: str | None = Field(default=None, max_length=128, description="MQTT client id (default: thing)")
    host: str = Field(default="127.0.0.1", min_length=1, description="broker host or IoT Core endpoint")
    port: int | None = Field(default=None, ge=1, le=65535, description="default 8883 with TLS, else 1883")
    tls: TlsSettings | None = Field(default=None, description="mutual TLS; required for iotcore")
    keepalive_s: int = Field(default=30, ge=5, le=1200)
    reconnect_min_s: float = Field(default=0.5, gt=0, le=60, description="first reconnect delay")
    reconnect_max_s: float = Field(default=30.0, gt=0, le=600, description="reconnect delay cap")
    publish_timeout_s: float = Field(default=10.0, gt=0, le=120, description="wait this long for a PUBACK")

    @property
    def effective_client_id(self) -> str:
        return self.client_id or self.thing_name

    @property
    def effective_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)


class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog's recommendation for reconnect storms)."""

    def __init__(self, minimum: float = 0.5, maximum: float = 30.0, rng: random.Random | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum
        self._attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        cap = min(self.maximum, self.minimum * (2**self._attempt))
        self._attempt = min(self._attempt + 1, 32)
        # full jitter, but never below the minimum so a flapping broker is not hammered
        return self.minimum + self._rng.random() * max(0.0, cap - self.minimum)

    def reset(self) -> None:
        self._attempt = 0


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching (`+`, `#`); `$`-topics are not matched by a leading wildcard (MQTT spec 4.7.2)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    fparts, tparts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(fparts):
        if part == "#":
            return True
        if i >= len(tparts):
            return False
        if part != "+" and part != tparts[i]:
            return False
    return len(fparts) == len(tparts)


def wait_connected(connected: threading.Event, settings: TransportSettings, timeout: float,
                   last_error: str | None) -> None:
    """Block until the broker session is up, or raise naming the endpoint and the last error seen."""
    if not connected.wait(timeout):
        raise TransportError(
            f"could not connect to {settings.host}:{settings.effective_port} within {timeout}s"
            + (f": {last_error}" if last_error else "")
        )


def require_connected(connected: threading.Event, topic: str) -> None:
    if not connected.is_set():
        raise NotConnectedError(f"not connected; cannot publish to {topic!r}")
