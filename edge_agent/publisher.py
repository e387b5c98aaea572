"""Drains the durable outbox through a Transport, in order, deleting nothing before the broker's PUBACK.

Delivery is at-least-once: a crash between PUBACK and `mark_sent` sends that message again, so the
cloud de-duplicates by event id (every candidate carries one). While the broker is unreachable the
publisher waits with exponential backoff + jitter and keeps everything in the outbox.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from contracts import Candidate, topics
from contracts.telemetry import CameraStatus, Heartbeat
from edge_agent import metrics
from edge_agent.outbox import Outbox
from edge_agent.transport.base import Backoff, PublishRejectedError, Transport, TransportError

log = logging.getLogger(__name__)


def put_candidate(outbox: Outbox, candidate: Candidate) -> bool:
    """Accept a candidate into the outbox on its topic; False if its event id was already accepted."""
    topic = topics.candidates(candidate.gateway_id, candidate.camera_id)
    return outbox.put(candidate.event_id, topic, candidate.model_dump_json().encode())


class OutboxPublisher:
    def __init__(
        self,
        outbox: Outbox,
        transport: Transport,
        thing_name: str,
        heartbeat_interval_s: float = 60.0,
        batch_size: int = 50,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        config_version: Callable[[], int | None] | None = None,
        agent_version: str | None = None,
        camera_status: Callable[[], dict[str, CameraStatus]] | None = None,
    ) -> None:
        self.outbox = outbox
        self.transport = transport
        self.thing = thing_name
        self.heartbeat_interval_s = heartbeat_interval_s
        self.batch_size = batch_size
        self.config_version = config_version
        self.agent_version = agent_version
        self.camera_status = camera_status
        self._backoff = Backoff(backoff_min_s, backoff_max_s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = time.monotonic()
        self._next_heartbeat = 0.0
        self.sent_total = 0
        self.failures = 0

    def start(self) -> OutboxPublisher:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def notify(self) -> None:
        """Call after `outbox.put` to send at once instead of at the next poll."""
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """True once the outbox is empty (tests and graceful shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.count_pending() == 0:
                return True
            time.sleep(0.05)
        return self.outbox.count_pending() == 0

    # --- loop --------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.run_once()
            except Exception:  # a bug must not kill the only thread that empties the outbox
                log.exception("outbox publisher iteration failed")
                delay = self._backoff.next_delay()
            self._wake.wait(delay)
            self._wake.clear()

    def run_once(self) -> float:
        """Send what is pending and the heartbeat if due; returns how long to sleep before the next round."""
        if not self.transport.is_connected:
            return self._backoff.next_delay()
        if time.monotonic() >= self._next_heartbeat:
            self._send_heartbeat()
        batch = self.outbox.pending(self.batch_size)
        for message in batch:
            if self._stop.is_set():
                return 0
            try:
                self.transport.publish(message.topic, message.payload, qos=1)
            except TransportError as exc:
                self.failures += 1
                self.outbox.mark_failed(message.event_id, str(exc))
                delay = self._backoff.next_delay()
                level = logging.ERROR if isinstance(exc, PublishRejectedError) else logging.WARNING
                log.log(level, "publish failed, message kept in outbox",
                        extra={"event_id": message.event_id, "topic": message.topic, "error": str(exc),
                               "attempts": message.attempts + 1, "retry_in_s": round(delay, 2)})
                return delay  # keep order: nothing after this message goes before it
            self.outbox.mark_sent(message.event_id)
            self.sent_total += 1
            self._backoff.reset()
            log.info("message published", extra={"event_id": message.event_id, "topic": message.topic})
        return 0 if len(batch) == self.batch_size else 0.5

    def _cameras(self) -> dict[str, CameraStatus]:
        if self.camera_status is None:
            return {}
        try:
            return dict(list(self.camera_status().items())[:64])
        except Exception:  # a status bug must not cost the heartbeat itself
            log.exception("camera status unavailable for the heartbeat")
            return {}

    def _send_heartbeat(self) -> None:
        beat = Heartbeat(
            gateway_id=self.thing,
            sent_at=datetime.now(UTC),
            uptime_s=round(time.monotonic() - self._started_at, 3),
            outbox_pending=self.outbox.count_pending(),
            sent_total=self.sent_total,
            config_version=self.config_version() if self.config_version else None,
            agent_version=self.agent_version,
            cameras=self._cameras(),
        )
        metrics.heartbeat(beat)  # Heartbeat, OutboxPending, per-camera CameraUp/FramesDropped/Reconnects
        try:
            self.transport.publish(topics.heartbeat(self.thing), beat.model_dump_json().encode(), qos=1)
            self._next_heartbeat = time.monotonic() + self.heartbeat_interval_s
        except TransportError as exc:  # a missed heartbeat is not worth keeping; try again shortly
            self._next_heartbeat = time.monotonic() + min(5.0, self.heartbeat_interval_s)
            log.warning("heartbeat not sent", extra={"error": str(exc)})
