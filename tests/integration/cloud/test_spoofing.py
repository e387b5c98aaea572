"""A spoofing gateway reaches no other customer (moto server over HTTP: IoT things, SQS, SNS, DynamoDB, S3).

Two customers: gateway gw1 at site A, gateway gw2 at site B (IoT thing attributes), one SNS subscriber per site
filtering on `site_id`. The candidates travel as the IoT rule delivers them (the envelope with the thing name
from the topic) through the candidates queue into the Lambda handler.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from cloud_moto import Aws

from cloud.runtime.lambda_handler import process_batch
from cloud.runtime.wiring import build_pipeline
from contracts import Candidate, ClipRef
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate, write_avi

pytestmark = pytest.mark.integration


def subscribe_site(aws: Aws, site: str) -> str:
    url = aws.sqs.create_queue(QueueName=f"customer-{site}")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.sns.subscribe(TopicArn=aws.settings.topic_arn, Protocol="sqs", Endpoint=arn, Attributes={
        "RawMessageDelivery": "true", "FilterPolicy": json.dumps({"site_id": [site]})})
    return url


def from_gateway(candidate: Candidate, gateway: str) -> Candidate:
    return candidate.model_copy(update={"gateway_id": gateway})


def upload(aws: Aws, path: Path, key: str) -> ClipRef:
    aws.s3.upload_file(str(path), "vigia-media", key)
    return ClipRef(kind="s3", uri=f"s3://vigia-media/{key}", size_bytes=path.stat().st_size)


def deliver(aws: Aws, bodies: list[str]) -> dict:
    """Through the candidates queue, then the Lambda handler with the records SQS hands out."""
    for body in bodies:
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)
    messages = aws.receive_all(aws.queue_url)
    assert len(messages) == len(bodies)
    event = {"Records": [{"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"}
                         for m in messages]}
    return process_batch(event, build_pipeline(aws.settings, decide_by_candidate_score))


def test_a_spoofing_gateway_reaches_no_other_customer(aws: Aws, tmp_path: Path) -> None:
    iot = boto3.client("iot")
    iot.create_thing(thingName="gw1", attributePayload={"attributes": {"site_id": "site-A"}})
    iot.create_thing(thingName="gw2", attributePayload={"attributes": {"site_id": "site-B"}})
    site_a, site_b = subscribe_site(aws, "site-A"), subscribe_site(aws, "site-B")
    gw1_clip = upload(aws, write_avi(tmp_path / "gw1.avi"), "gateways/gw1/clips/cam-front/gw1-event.avi")

    # gw2 claims to be gw1 at site A (a site_id in the body changes nothing either way)
    claims_gw1 = from_gateway(make_candidate(score=0.95, site_id="site-A"), "gw1")
    # gw2 as itself, naming gw1's clip
    steals_clip = from_gateway(make_candidate(score=0.95, site_id="site-A", clip=gw1_clip), "gw2")
    honest = from_gateway(make_candidate(score=0.95, site_id="site-B", clip=gw1_clip), "gw1")

    result = deliver(aws, [aws.envelope(claims_gw1, "gw2"), aws.envelope(steals_clip, "gw2"),
                           aws.envelope(honest, "gw1")])

    assert result == {"batchItemFailures": []}  # refusals are acknowledged, never retried
    [alert] = aws.receive_all(site_a)
    assert json.loads(alert["Body"])["event_id"] == honest.event_id
    assert alert["MessageAttributes"]["site_id"]["StringValue"] == "site-A"  # the registry's, not the body's
    assert aws.receive_all(site_b) == []
    letters = {json.loads(m["Body"])["candidate"]["event_id"]: m["MessageAttributes"]
               for m in aws.receive_all(aws.settings.dlq_url)}
    assert {eid: attrs["reason"]["StringValue"] for eid, attrs in letters.items()} == {
        claims_gw1.event_id: "identity_mismatch", steals_clip.event_id: "clip_outside_gateway"}
    assert "came from thing 'gw2'" in letters[claims_gw1.event_id]["error"]["StringValue"]
    assert "gateways/gw2/" in letters[steals_clip.event_id]["error"]["StringValue"]
    items = aws.dynamodb.scan(TableName="vigia-events")["Items"]
    stored = {i["event_id"]["S"]: i["site_id"]["S"] for i in items if "#" not in i["event_id"]["S"]}
    assert stored == {honest.event_id: "site-A"}


def test_unregistered_thing_and_bare_candidate_are_dead_lettered(aws: Aws) -> None:
    stranger = from_gateway(make_candidate(score=0.95), "gw-unknown")
    bare = make_candidate(score=0.95)
    result = deliver(aws, [aws.envelope(stranger, "gw-unknown"), bare.model_dump_json()])
    assert result == {"batchItemFailures": []}
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in aws.receive_all(aws.settings.dlq_url))
    assert reasons == ["no_connection_identity", "thing_not_registered"]
    assert aws.dynamodb.scan(TableName="vigia-events")["Count"] == 0
    assert aws.receive_all(aws.subscriber_url) == []
