"""Lambda on an SQS event source, with partial batch failure reporting.

The event source mapping must have FunctionResponseTypes=[ReportBatchItemFailures] (see the template).
Per record: processed or dead-lettered (malformed, unsafe, undecodable) → acknowledged; a transient
failure → listed in batchItemFailures so SQS redelivers only that record (after maxReceiveCount the
queue's redrive policy moves it to the same DLQ). If the dead-letter write itself fails, the record
is reported as failed too: nothing accepted is dropped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cloud.metrics import verifier as verifier_metrics
from cloud.pipeline import Pipeline, event_id_of
from cloud.ports import TransientError

log = logging.getLogger(__name__)

_pipeline: Pipeline | None = None


def _get_pipeline() -> Pipeline:
    """Built once per container (cold start), reused by every invocation."""
    global _pipeline
    if _pipeline is None:
        from cloud.runtime.wiring import build_pipeline
        from cloud.settings import CloudSettings

        _setup_logging()
        try:
            _pipeline = build_pipeline(CloudSettings())
        except ValueError as exc:  # settings (VIGIA_*, VIGIA_VERIFIER_*): the message names the variable
            # Raised for the whole batch: nothing is verified with a broken configuration; SQS redelivers the
            # records (its redrive policy dead-letters them after maxReceiveCount) and each invocation retries.
            log.critical("verifier cannot start: %s", exc, extra={"event_id": None})
            raise
    return _pipeline


def _setup_logging() -> None:
    try:
        from vigia.logs import configure_logging
    except ImportError:  # the Lambda image ships cloud/ and contracts/ only
        logging.getLogger().setLevel(logging.INFO)
    else:
        configure_logging("INFO")
    from cloud.metrics import CorrelationFilter

    for handler in logging.getLogger().handlers:  # every line carries the event id being handled
        handler.addFilter(CorrelationFilter())


def process_batch(event: dict[str, Any], pipeline: Pipeline) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        message_id = record.get("messageId", "")
        sent_ms = (record.get("attributes") or {}).get("SentTimestamp")
        if sent_ms and str(sent_ms).isdigit():
            verifier_metrics.queue_age(time.time() - int(sent_ms) / 1000.0)
        try:
            outcome = pipeline.handle(record.get("body", ""))
            log.info("record %s: %s", message_id, outcome.status,
                     extra={"event_id": outcome.event_id, "message_id": message_id})
        except TransientError as exc:  # expected (another delivery mid-verification, clip not there yet)
            log.warning("record %s not done yet, will be retried: %s", message_id, exc,
                        extra={"event_id": event_id_of(record.get("body", "")), "message_id": message_id})
            failures.append({"itemIdentifier": message_id})
        except Exception as exc:
            log.exception("record %s failed, will be retried: %s", message_id, exc,
                          extra={"event_id": event_id_of(record.get("body", "")), "message_id": message_id})
            failures.append({"itemIdentifier": message_id})
            verifier_metrics.error()
    return {"batchItemFailures": failures}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return process_batch(event, _get_pipeline())
