"""paho-mqtt 2.x adapter (MQTT 5, TLS optional): any broker, Mosquitto in tests, IoT Core too.

The network loop is ours rather than paho's `loop_start`, so that reconnects use exponential backoff
with jitter (paho's own reconnect delay has no jitter).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.transport.base import (
    Backoff,
    MessageCallback,
    NotConnectedError,
    PublishRejectedError,
    TransportError,
    TransportSettings,
    require_connected,
    topic_matches,
    wait_connected,
)

log = logging.getLogger(__name__)


class PahoTransport:
    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.effective_client_id,
            protocol=mqtt.MQTTv5,
        )
        if settings.tls:
            self._client.tls_set(
                ca_certs=settings.tls.ca_file,
                certfile=settings.tls.cert_file,
                keyfile=settings.tls.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        # the outbox is the only queue: paho must not keep its own backlog while we are offline
        self._client.max_queued_messages_set(1000)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._subs: list[tuple[str, MessageCallback, int]] = []
        self._subs_lock = threading.Lock()
        self._acks: dict[int, tuple[float, ReasonCode]] = {}
        self._acks_cond = threading.Condition()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self.last_error: str | None = None

    # --- Transport -------------------------------------------------------------------------------------
    def connect(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"mqtt-{self.settings.effective_client_id}", daemon=True
            )
            self._thread.start()
        wait_connected(self._connected, self.settings, timeout, self.last_error)

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float | None = None) -> None:
        require_connected(self._connected, topic)
        timeout = self.settings.publish_timeout_s if timeout is None else timeout
        info = self._client.publish(topic, payload, qos=qos)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise NotConnectedError(f"publish to {topic!r} failed: {mqtt.error_string(info.rc)}")
        if qos == 0:
            return
        deadline = time.monotonic() + timeout
        with self._acks_cond:
            while info.mid not in self._acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportError(f"no PUBACK for {topic!r} within {timeout}s")
                self._acks_cond.wait(remaining)
            _, reason = self._acks.pop(info.mid)
        if reason.is_failure:
            raise PublishRejectedError(topic, str(reason))

    def subscribe(self, topic_filter: str, callback: MessageCallback, qos: int = 1) -> None:
        with self._subs_lock:
            self._subs.append((topic_filter, callback, qos))
        if self._connected.is_set():
            self._client.subscribe(topic_filter, qos=qos)

    def disconnect(self) -> None:
        self._stop.set()
        try:
            self._client.disconnect()
        except Exception:  # already gone
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._connected.clear()

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    # --- network loop ----------------------------------------------------------------------------------
    def _run(self) -> None:
        # connect_async only records the broker; every attempt below goes through reconnect()
        self._client.connect_async(
            self.settings.host, self.settings.effective_port, keepalive=self.settings.keepalive_s
        )
        while not self._stop.is_set():
            try:
                self._client.reconnect()
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                self._wait_before_retry(f"{type(exc).__name__}: {exc}")
                continue
            while not self._stop.is_set():
                rc = self._client.loop(timeout=0.5)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            self._connected.clear()
            if not self._stop.is_set():
                self._wait_before_retry(self.last_error or "connection lost")
        try:
            self._client.loop(timeout=0.1)  # flush the DISCONNECT
        except Exception:
            pass

    def _wait_before_retry(self, reason: str) -> None:
        self.last_error = reason
        delay = self._backoff.next_delay()
        log.warning(
            "mqtt link down, retrying",
            extra={"broker": f"{self.settings.host}:{self.settings.effective_port}", "error": reason,
                   "retry_in_s": round(delay, 2)},
        )
        self._stop.wait(delay)

    # --- paho callbacks (network thread) ---------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"CONNACK {reason_code}"
            return
        self._backoff.reset()
        with self._subs_lock:
            subs = list(self._subs)
        for topic_filter, _, qos in subs:  # clean session: subscriptions are ours to restore
            client.subscribe(topic_filter, qos=qos)
        self._connected.set()
        log.info("mqtt connected", extra={"broker": f"{self.settings.host}:{self.settings.effective_port}",
                                          "client_id": self.settings.effective_client_id})

    def _on_disconnect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        self._connected.clear()
        self.last_error = f"disconnected: {reason_code}"

    def _on_publish(self, client, userdata, mid: int, reason_code: ReasonCode, properties) -> None:
        now = time.monotonic()
        with self._acks_cond:
            self._acks[mid] = (now, reason_code)
            # acks nobody waits for any more (a timed-out publish) must not answer a later reused mid
            for stale in [m for m, (t, _) in self._acks.items() if now - t > 120]:
                del self._acks[stale]
            self._acks_cond.notify_all()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        with self._subs_lock:
            subs = list(self._subs)
        for topic_filter, callback, _ in subs:
            if topic_matches(topic_filter, message.topic):
                try:
                    callback(message.topic, message.payload)
                except Exception:
                    log.exception("message handler failed", extra={"topic": message.topic})
