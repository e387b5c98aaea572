"""Lambda batch handler and the SQS worker against moto server's SQS/SNS/S3/DynamoDB."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from cloud_moto import Aws

from cloud.runtime import lambda_handler
from cloud.runtime.wiring import build_pipeline
from cloud.runtime.worker import SqsWorker
from contracts import ClipRef
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate

pytestmark = pytest.mark.integration


def sqs_event(*bodies: str) -> dict:
    return {"Records": [{"messageId": f"m{i}", "body": b, "eventSource": "aws:sqs"} for i, b in enumerate(bodies)]}


def test_lambda_handler_from_environment(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler configures itself from VIGIA_* like the deployed function (template's Environment)."""
    s = aws.settings
    for name, value in {"VIGIA_STORE": "aws", "VIGIA_BUCKET": s.bucket, "VIGIA_TABLE": s.table,
                        "VIGIA_TOPIC_ARN": s.topic_arn, "VIGIA_DLQ_URL": s.dlq_url,
                        "VIGIA_VERIFIER": "tests.unit.cloud_factories:stand_in_verify_factory"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_handler, "_pipeline", None)
    monkeypatch.setattr(lambda_handler, "_setup_logging", lambda: None)  # keep pytest's log capture

    good = aws.envelope(make_candidate(score=0.9))
    missing = aws.envelope(make_candidate(clip=ClipRef(kind="s3", uri="s3://vigia-media/gateways/gw-1/none.avi")))
    result = lambda_handler.handler(sqs_event(good, '{"schema_version": 1, "event_id": "nope"}', missing, good))
    # Design: malformed → dead-lettered AND acknowledged (never retried); transient → reported for retry.
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}

    [letter] = aws.receive_all(s.dlq_url)
    assert letter["Body"] == '{"schema_version": 1, "event_id": "nope"}'  # raw body, unchanged
    assert letter["MessageAttributes"]["reason"]["StringValue"] == "malformed"
    assert "event_id" in letter["MessageAttributes"]["error"]["StringValue"]
    assert aws.dynamodb.scan(TableName="vigia-events")["Count"] == 1
    assert len(aws.receive_all(aws.subscriber_url)) == 1


class SpySqs:
    """Wraps the real client to observe visibility extensions."""

    def __init__(self, client) -> None:
        self._client = client
        self.visibility_calls: list[int] = []

    def change_message_visibility(self, **kwargs):
        self.visibility_calls.append(kwargs["VisibilityTimeout"])
        return self._client.change_message_visibility(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def queue_depth(aws: Aws, url: str) -> int:
    attrs = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def wait_until(predicate, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_worker_processes_the_queue_and_stops_gracefully(aws: Aws, tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_verify(candidate, clip_path):
        if candidate.score == 0.95:  # the slow clip
            started.set()
            release.wait(timeout=10)
        return decide_by_candidate_score(candidate, clip_path)

    spy = SpySqs(aws.sqs)
    worker = SqsWorker(build_pipeline(aws.settings, slow_verify), aws.queue_url, sqs=spy,
                       wait_s=1, visibility_s=10, heartbeat_s=0.1)
    dup = aws.envelope(make_candidate(score=0.9))
    for body in (dup, "not json", dup):
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_until(lambda: sum(worker.stats.values()) == 3)
    assert worker.stats == {"processed": 1, "dead_lettered": 1, "duplicate": 1, "failed": 0}
    assert queue_depth(aws, aws.queue_url) == 0  # deleted after success and after dead-lettering

    # A slow clip is in progress when SIGTERM-like stop() arrives: it is finished and deleted first.
    slow = make_candidate(score=0.95)
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=aws.envelope(slow))
    assert started.wait(timeout=10)
    time.sleep(0.35)  # a few heartbeats while the verifier works
    worker.stop()
    release.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert worker.stats["processed"] == 2
    assert spy.visibility_calls and set(spy.visibility_calls) == {10}
    assert queue_depth(aws, aws.queue_url) == 0
    assert aws.dynamodb.scan(TableName="vigia-events")["Count"] == 2
    assert len(aws.receive_all(aws.subscriber_url)) == 2
    [letter] = aws.receive_all(aws.settings.dlq_url)
    assert letter["Body"] == "not json"


def test_transient_failures_reach_the_dlq_through_redrive(aws: Aws) -> None:
    """A clip that never arrives: the worker leaves the message; after maxReceiveCount SQS moves it."""
    aws.sqs.set_queue_attributes(QueueUrl=aws.queue_url, Attributes={"VisibilityTimeout": "1"})
    body = aws.envelope(make_candidate(clip=ClipRef(kind="s3", uri="s3://vigia-media/gateways/gw-1/never.avi")))
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)
    worker = SqsWorker(build_pipeline(aws.settings, decide_by_candidate_score), aws.queue_url, sqs=aws.sqs,
                       wait_s=1, visibility_s=1, heartbeat_s=0.5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: worker.stats["failed"] >= 2, timeout_s=20)
        letters: list[dict] = []
        wait_until(lambda: bool(letters.extend(aws.receive_all(aws.settings.dlq_url, wait_s=0)) or letters),
                   timeout_s=10)
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert json.loads(letters[0]["Body"])["candidate"]["event_id"] == json.loads(body)["candidate"]["event_id"]
