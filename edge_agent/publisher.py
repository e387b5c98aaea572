"""Drains the durable outbox through a Transport, in order, deleting nothing before the broker's PUBACK.

Delivery is at-least-once: a crash between PUBACK and `mark_sent` sends that message again, so the
cloud de-duplicates by event id (every candidate carries one). While the broker is unreachable the
publisher waits with exponential backoff + jitter and keeps everything in the outbox.

With a clip uploader (edge_agent.clip_upload) other than the local one, a candidate whose clip is still
local has it uploaded first; the outcome is recorded in its outbox row (a restart does not upload again)
and the candidate goes out with the uploaded reference. A retryable upload failure holds the queue like a
broker outage (order kept); a refused one publishes the candidate without its clip, saying why.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from contracts import Candidate, topics
from contracts.clip import ClipRef
from contracts.telemetry import CameraStatus, Heartbeat
from edge_agent import metrics
from edge_agent.clip_upload import ClipUploader, UploadRefused, UploadRetryable
from edge_agent.outbox import Outbox, OutboxMessage
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
        uploader: ClipUploader | None = None,
        clips_root: Path | None = None,
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
        # the local uploader leaves references as they are: no upload step at all
        self.uploader = uploader if uploader is not None and uploader.kind != "local" else None
        if self.uploader is not None and clips_root is None:
            raise ValueError("a clip uploader needs the clips root its local references are relative to")
        self.clips_root = clips_root
        self._upload_outage_since: float | None = None  # set while uploads fail retryably: log once per outage
        self.uploads_total = 0
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
                payload = self._payload_with_clip(message)
            except UploadRetryable as exc:
                self.failures += 1
                self.outbox.mark_failed(message.event_id, f"clip upload: {exc}")
                delay = self._backoff.next_delay()
                self._upload_failed(message, exc, delay)
                return delay  # keep order: nothing after this message goes before it
            try:
                self.transport.publish(message.topic, payload, qos=1)
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

    # --- clip upload ---------------------------------------------------------------------------------------
    def _payload_with_clip(self, message: OutboxMessage) -> bytes:
        """The payload to publish: the candidate with its uploaded clip reference (uploading it first, once)."""
        if self.uploader is None and message.clip_upload is None:
            return message.payload
        outcome = message.clip_upload
        if outcome is None:
            candidate = _candidate(message)
            if candidate is None or candidate.clip is None or candidate.clip.kind != "local":
                return message.payload
            outcome = self._upload(candidate)
            self.outbox.record_clip_upload(message.event_id, outcome)
        return _apply_clip_upload(message, outcome)

    def _upload(self, candidate: Candidate) -> str:
        """Upload the candidate's clip; the outcome as recorded in the outbox. Raises UploadRetryable."""
        assert self.uploader is not None and self.clips_root is not None
        try:
            ref = self.uploader.upload(candidate, self.clips_root)
        except UploadRefused as exc:
            # a customer's alert is never lost because of its clip: it goes out without one, saying why
            log.error("clip upload refused; candidate published without its clip", extra={
                "event_id": candidate.event_id, "camera_id": candidate.camera_id, "uploader": self.uploader.kind,
                "error": str(exc)})
            self._upload_resumed()
            return json.dumps({"clip": None, "reason": f"clip not uploaded: {exc}"[:200]})
        self.uploads_total += 1
        self._upload_resumed()
        log.info("clip uploaded", extra={"event_id": candidate.event_id, "uploader": self.uploader.kind,
                                         "uri": ref.uri, "size_bytes": ref.size_bytes})
        return json.dumps({"clip": ref.model_dump(mode="json"), "reason": None})

    def _upload_failed(self, message: OutboxMessage, exc: Exception, delay: float) -> None:
        extra = {"event_id": message.event_id, "error": str(exc), "attempts": message.attempts + 1,
                 "retry_in_s": round(delay, 2)}
        if self._upload_outage_since is None:
            self._upload_outage_since = time.monotonic()
            log.warning("clip upload failed, candidates kept in outbox until it succeeds", extra=extra)
        else:
            log.debug("clip upload still failing", extra=extra)

    def _upload_resumed(self) -> None:
        if self._upload_outage_since is not None:
            log.info("clip uploads resumed",
                     extra={"outage_s": round(time.monotonic() - self._upload_outage_since, 1)})
            self._upload_outage_since = None

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


def _candidate(message: OutboxMessage) -> Candidate | None:
    try:
        return Candidate.model_validate_json(message.payload)
    except ValidationError:  # not a candidate (or written by another schema): sent as accepted
        return None


def _apply_clip_upload(message: OutboxMessage, outcome: str) -> bytes:
    """The accepted candidate with the recorded upload outcome: the new reference, or no clip and a reason."""
    candidate = _candidate(message)
    if candidate is None:
        return message.payload
    record = json.loads(outcome)
    if record.get("clip") is not None:
        candidate = candidate.model_copy(update={"clip": ClipRef.model_validate(record["clip"])})
    else:
        candidate = candidate.model_copy(update={"clip": None,
                                                 "reasons": [*candidate.reasons, str(record.get("reason"))]})
    return candidate.model_dump_json().encode()
