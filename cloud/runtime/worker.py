"""Long-running SQS worker (ECS, e.g. on a GPU host): long-poll, process, delete on success.

- A heartbeat thread extends the message's visibility while a slow clip is being verified, so no
  other worker picks it up meanwhile.
- A transient failure leaves the message in the queue (it reappears after its visibility timeout;
  the redrive policy dead-letters it after maxReceiveCount). Permanent failures are dead-lettered by
  the pipeline and deleted.
- SIGTERM/SIGINT: finish the current message, hand back the ones not started, stop polling.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from cloud.aws import aws_client
from cloud.metrics import verifier as verifier_metrics
from cloud.pipeline import Pipeline, event_id_of
from cloud.ports import TransientError

log = logging.getLogger(__name__)


class _Heartbeat:
    """Extends one message's visibility every `every_s` seconds until stopped."""

    def __init__(self, sqs: Any, queue_url: str, receipt: str, visibility_s: int, every_s: float,
                 event_id: str | None) -> None:
        self._stop = threading.Event()
        self._args = (sqs, queue_url, receipt, visibility_s, every_s, event_id)
        self._thread = threading.Thread(target=self._run, name="sqs-heartbeat", daemon=True)

    def _run(self) -> None:
        sqs, queue_url, receipt, visibility_s, every_s, event_id = self._args
        while not self._stop.wait(every_s):
            try:
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt,
                                              VisibilityTimeout=visibility_s)
                log.debug("visibility extended", extra={"event_id": event_id})
            except Exception as exc:  # the message may be processed twice; idempotency covers that
                log.warning("could not extend visibility: %s", exc, extra={"event_id": event_id})

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class SqsWorker:
    def __init__(
        self,
        pipeline: Pipeline,
        queue_url: str,
        *,
        sqs: Any | None = None,
        wait_s: int = 20,
        visibility_s: int = 60,
        heartbeat_s: float = 20.0,
        max_messages: int = 1,
    ) -> None:
        sqs = aws_client("sqs", sqs)
        self.pipeline = pipeline
        self.queue_url = queue_url
        self.sqs = sqs
        self.wait_s = wait_s
        self.visibility_s = visibility_s
        self.heartbeat_s = heartbeat_s
        self.max_messages = max_messages
        self.stop_event = threading.Event()
        self.stats = {"processed": 0, "dead_lettered": 0, "duplicate": 0, "failed": 0}

    def stop(self, *_: object) -> None:
        """Ask the loop to stop after the current message (safe from a signal handler)."""
        if not self.stop_event.is_set():
            log.info("stop requested: finishing the current message", extra={"event_id": None})
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        """Only from the main thread (Python's rule for signal handlers)."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self) -> dict[str, int]:
        log.info("worker polling %s", self.queue_url, extra={"event_id": None})
        while not self.stop_event.is_set():
            try:
                resp = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=self.max_messages,
                    WaitTimeSeconds=self.wait_s, VisibilityTimeout=self.visibility_s,
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                )
            except Exception as exc:
                log.exception("receive failed: %s", exc, extra={"event_id": None})
                self.stop_event.wait(min(5.0, self.wait_s or 1.0))
                continue
            messages = resp.get("Messages", [])
            for i, message in enumerate(messages):
                if self.stop_event.is_set():
                    self._release(messages[i:])
                    break
                self.handle_message(message)
        log.info("worker stopped", extra={"event_id": None, **self.stats})
        return dict(self.stats)

    def handle_message(self, message: dict[str, Any]) -> None:
        body, receipt = message.get("Body", ""), message["ReceiptHandle"]
        event_id = event_id_of(body)
        sent_ms = (message.get("Attributes") or {}).get("SentTimestamp")
        if sent_ms and str(sent_ms).isdigit():
            verifier_metrics.queue_age(time.time() - int(sent_ms) / 1000.0)
        try:
            with _Heartbeat(self.sqs, self.queue_url, receipt, self.visibility_s, self.heartbeat_s, event_id):
                outcome = self.pipeline.handle(body)
        except TransientError as exc:  # expected (another delivery mid-verification, clip not there yet)
            self.stats["failed"] += 1
            log.warning("not done yet, left for redelivery: %s", exc, extra={"event_id": event_id})
            return
        except Exception as exc:
            self.stats["failed"] += 1
            verifier_metrics.error()
            log.exception("message failed, left for redelivery: %s", exc, extra={"event_id": event_id})
            return
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except Exception as exc:  # it comes back; idempotency turns the redelivery into a no-op
            log.warning("could not delete a handled message: %s", exc, extra={"event_id": outcome.event_id})
        self.stats[outcome.status] = self.stats.get(outcome.status, 0) + 1
        log.info("message done: %s", outcome.status, extra={"event_id": outcome.event_id})

    def _release(self, messages: list[dict[str, Any]]) -> None:
        """Received but not started: make them visible again now rather than after the timeout."""
        for message in messages:
            try:
                self.sqs.change_message_visibility(QueueUrl=self.queue_url,
                                                   ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            except Exception as exc:
                eid = event_id_of(message.get("Body", ""))
                log.warning("could not release a message: %s", exc, extra={"event_id": eid})
