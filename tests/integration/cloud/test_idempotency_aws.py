"""The in-progress claim on DynamoDB (moto server over HTTP): the same semantics as the SQLite store."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cloud_moto import Aws

from cloud.events.dynamodb import CLAIM_SUFFIX, DynamoEventStore
from cloud.pipeline import Outcome
from cloud.ports import ProcessingInProgress
from cloud.runtime.wiring import build_pipeline
from contracts import new_event_id
from tests.unit.cloud_factories import make_candidate
from tests.unit.idempotency_harness import GatedVerifier, deliver_twice_at_once

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def atomic_conditional_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB evaluates a condition and writes an item atomically; moto 5 does not lock between the two (two
    concurrent conditional updates can both pass). Serialising moto's write calls restores the service's
    guarantee, so the test checks our conditions, not moto's race."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()

    def serialised(method: Callable) -> Callable:
        @functools.wraps(method)
        def call(*args, **kwargs):
            with lock:
                return method(*args, **kwargs)
        return call

    for name in ("put_item", "update_item", "delete_item"):
        monkeypatch.setattr(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name)))


def alerts(aws: Aws) -> list[str]:
    return [json.loads(m["Body"])["event_id"] for m in aws.receive_all(aws.subscriber_url)]


def test_claim_conditional_writes(aws: Aws) -> None:
    store = DynamoEventStore("vigia-events")
    eid = new_event_id()
    assert store.claim_processing(eid, T0, lease_s=60) is True
    assert store.claim_processing(eid, T0 + timedelta(seconds=59), lease_s=60) is False  # live claim
    assert store.claim_processing(eid, T0 + timedelta(seconds=61), lease_s=60) is True  # crashed: taken over
    assert store.claim_processing(eid, T0 + timedelta(seconds=62), lease_s=60) is False
    store.release_processing(eid)
    assert store.claim_processing(eid, T0 + timedelta(seconds=63), lease_s=60) is True
    claim = aws.dynamodb.get_item(TableName="vigia-events", Key={"event_id": {"S": eid + CLAIM_SUFFIX}})["Item"]
    assert int(claim["expires_at"]["N"]) > T0.timestamp()  # a crashed worker's claim expires by TTL
    assert store.get(eid) is None  # the claim is not the event
    store.release_processing(eid)
    assert aws.dynamodb.scan(TableName="vigia-events")["Count"] == 0  # released claims leave nothing behind


def test_two_concurrent_deliveries_verify_once(aws: Aws) -> None:
    verifier = GatedVerifier()
    pipeline = build_pipeline(aws.settings, verifier)
    candidate = make_candidate(score=0.9)
    body = aws.envelope(candidate)

    results = deliver_twice_at_once(pipeline, body, verifier)

    assert verifier.calls == 1
    [processed] = [r for r in results if isinstance(r, Outcome)]
    [deferred] = [r for r in results if isinstance(r, Exception)]
    assert processed.status == "processed" and processed.verdict.decision == "confirmed"
    assert isinstance(deferred, ProcessingInProgress)
    again = pipeline.handle(body)
    assert again.status == "duplicate" and again.verdict == processed.verdict and verifier.calls == 1
    # one event (the scan behind query() skips claim items), one alert
    assert [r.event_id for r in pipeline.events.query()] == [candidate.event_id]
    assert aws.dynamodb.scan(TableName="vigia-events")["Count"] == 1  # the event; its claim is gone
    assert alerts(aws) == [candidate.event_id]


def test_crashed_claim_is_taken_over_and_live_one_defers(aws: Aws) -> None:
    verifier = GatedVerifier()
    verifier.other_finished.set()
    pipeline = build_pipeline(aws.settings.model_copy(update={"processing_lease_s": 60.0}), verifier)
    live, crashed = make_candidate(score=0.9), make_candidate(score=0.9)
    now = datetime.now(UTC)
    assert pipeline.events.claim_processing(live.event_id, now, lease_s=60)
    assert pipeline.events.claim_processing(crashed.event_id, now - timedelta(seconds=61), lease_s=60)

    with pytest.raises(ProcessingInProgress):
        pipeline.handle(aws.envelope(live))
    assert verifier.calls == 0 and pipeline.events.get(live.event_id) is None

    outcome = pipeline.handle(aws.envelope(crashed))
    assert outcome.status == "processed" and verifier.calls == 1
    assert alerts(aws) == [crashed.event_id]


def test_worker_leaves_an_in_progress_event_on_the_queue(aws: Aws) -> None:
    """The ECS worker meets a live claim: it does not verify, does not delete; SQS redelivers the message."""
    from cloud.runtime.worker import SqsWorker

    verifier = GatedVerifier()
    verifier.other_finished.set()
    worker = SqsWorker(build_pipeline(aws.settings, verifier), aws.queue_url, sqs=aws.sqs, wait_s=0,
                       visibility_s=30, heartbeat_s=10)
    candidate = make_candidate(score=0.9)
    assert worker.pipeline.events.claim_processing(candidate.event_id, datetime.now(UTC), lease_s=300)
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=aws.envelope(candidate))
    [message] = aws.sqs.receive_message(QueueUrl=aws.queue_url, WaitTimeSeconds=1)["Messages"]

    worker.handle_message(message)

    assert verifier.calls == 0 and worker.stats["failed"] == 1
    aws.sqs.change_message_visibility(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                      VisibilityTimeout=0)  # what the visibility timeout does, now
    [again] = aws.sqs.receive_message(QueueUrl=aws.queue_url, WaitTimeSeconds=1)["Messages"]
    assert again["Body"] == message["Body"]  # not deleted: it comes back
