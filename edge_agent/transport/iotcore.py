"""AWS IoT Core adapter: awsiotsdk MQTT 5 client with mutual TLS (X.509 certificate of the thing).

The CRT client reconnects by itself with exponential backoff and full jitter; we only restore
subscriptions on each new (clean) session and refuse to queue publishes while offline, so that the
durable outbox stays the single place where unsent messages live.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import TimeoutError as FutureTimeout

from awscrt import mqtt5
from awsiot import mqtt5_client_builder

from edge_agent.transport.base import (
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

_OK = {mqtt5.PubackReasonCode.SUCCESS, mqtt5.PubackReasonCode.NO_MATCHING_SUBSCRIBERS}


class IotCoreTransport:
    def __init__(self, settings: TransportSettings) -> None:
        if not settings.tls or not settings.tls.cert_file or not settings.tls.key_file:
            raise ValueError("iotcore transport needs tls.cert_file and tls.key_file (the thing's certificate)")
        self.settings = settings
        self._subs: list[tuple[str, MessageCallback, int]] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stopped = threading.Event()
        self.last_error: str | None = None
        self._client = mqtt5_client_builder.mtls_from_path(
            endpoint=settings.host,
            port=settings.effective_port,
            cert_filepath=settings.tls.cert_file,
            pri_key_filepath=settings.tls.key_file,
            ca_filepath=settings.tls.ca_file,
            client_id=settings.effective_client_id,
            clean_session=True,
            keep_alive_secs=settings.keepalive_s,
            session_behavior=mqtt5.ClientSessionBehaviorType.CLEAN,
            offline_queue_behavior=mqtt5.ClientOperationQueueBehaviorType.FAIL_ALL_ON_DISCONNECT,
            retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.FULL,
            min_reconnect_delay_ms=int(settings.reconnect_min_s * 1000),
            max_reconnect_delay_ms=int(settings.reconnect_max_s * 1000),
            ack_timeout_sec=int(max(1, settings.publish_timeout_s)),
            on_publish_received=self._on_publish_received,
            on_lifecycle_connection_success=self._on_connection_success,
            on_lifecycle_connection_failure=self._on_connection_failure,
            on_lifecycle_disconnection=self._on_disconnection,
            on_lifecycle_stopped=lambda data: self._stopped.set(),
        )
        self._started = False

    def connect(self, timeout: float = 10.0) -> None:
        if not self._started:
            self._client.start()
            self._started = True
        wait_connected(self._connected, self.settings, timeout, self.last_error)

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float | None = None) -> None:
        require_connected(self._connected, topic)
        timeout = self.settings.publish_timeout_s if timeout is None else timeout
        future = self._client.publish(mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS(qos)))
        try:
            result = future.result(timeout)
        except FutureTimeout as exc:
            raise TransportError(f"no PUBACK for {topic!r} within {timeout}s") from exc
        except Exception as exc:  # awscrt.exceptions.AwsCrtError: offline, connection lost mid-flight
            raise NotConnectedError(f"publish to {topic!r} failed: {exc}") from exc
        puback = result.puback
        if qos and puback is not None and puback.reason_code not in _OK:
            raise PublishRejectedError(topic, mqtt5.PubackReasonCode(puback.reason_code).name)

    def subscribe(self, topic_filter: str, callback: MessageCallback, qos: int = 1) -> None:
        with self._lock:
            self._subs.append((topic_filter, callback, qos))
        if self._connected.is_set():
            self._send_subscribe([(topic_filter, qos)], wait=True)

    def disconnect(self) -> None:
        if self._started:
            self._client.stop()
            self._stopped.wait(5)  # let the DISCONNECT go out before the client object is dropped
            self._started = False
        self._connected.clear()

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    # --- CRT callbacks (CRT event-loop thread) ---------------------------------------------------------
    def _send_subscribe(self, filters: list[tuple[str, int]], wait: bool) -> None:
        if not filters:
            return
        packet = mqtt5.SubscribePacket(
            subscriptions=[mqtt5.Subscription(topic_filter=f, qos=mqtt5.QoS(q)) for f, q in filters]
        )
        future = self._client.subscribe(packet)
        if wait:
            future.result(self.settings.publish_timeout_s)

    def _on_connection_success(self, data: mqtt5.LifecycleConnectSuccessData) -> None:
        with self._lock:
            filters = [(f, q) for f, _, q in self._subs]
        # never block the event loop waiting for the SUBACK: it is delivered on this very thread
        self._send_subscribe(filters, wait=False)
        self._connected.set()
        log.info("iot core connected", extra={"endpoint": self.settings.host,
                                              "client_id": self.settings.effective_client_id})

    def _on_connection_failure(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        self._connected.clear()
        self.last_error = str(data.exception)
        log.warning("iot core connection failed, the client retries with backoff",
                    extra={"endpoint": self.settings.host, "error": self.last_error})

    def _on_disconnection(self, data: mqtt5.LifecycleDisconnectData) -> None:
        self._connected.clear()
        self.last_error = str(data.exception)

    def _on_publish_received(self, data: mqtt5.PublishReceivedData) -> None:
        packet = data.publish_packet
        with self._lock:
            subs = list(self._subs)
        for topic_filter, callback, _ in subs:
            if topic_matches(topic_filter, packet.topic):
                try:
                    callback(packet.topic, bytes(packet.payload or b""))
                except Exception:
                    log.exception("message handler failed", extra={"topic": packet.topic})
