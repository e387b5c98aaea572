"""moto server over real HTTP on loopback: one per session, state reset before each test.

The application code gets its endpoint only from AWS_ENDPOINT_URL, exactly as in production.
(No __init__.py here on purpose: were tests/ ever not a package, a package named `cloud` here would
shadow the real `cloud`; without it, this folder's modules import as top-level names.)
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cloud_moto import Aws

from cloud.events.dynamodb import create_table
from cloud.settings import CloudSettings

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Aws:
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    s3.create_bucket(Bucket="vigia-media")
    # The registry of things the cloud takes sites from (the factories' gateway "gw-1" is at "site-1").
    boto3.client("iot").create_thing(thingName="gw-1", attributePayload={"attributes": {"site_id": "site-1"}})
    create_table(ddb, "vigia-events")
    topic_arn = sns.create_topic(Name="vigia-alerts")["TopicArn"]
    dlq_url = sqs.create_queue(QueueName="candidates-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName="candidates", Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
    })["QueueUrl"]
    subscriber_url = sqs.create_queue(QueueName="customer-front-door")["QueueUrl"]
    subscriber_arn = sqs.get_queue_attributes(
        QueueUrl=subscriber_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=subscriber_arn, Attributes={
        "RawMessageDelivery": "true",
        "FilterPolicy": json.dumps({"camera_id": ["cam-front"], "verdict": ["confirmed"]}),
    })

    settings = CloudSettings(
        store="aws", bucket="vigia-media", table="vigia-events", topic_arn=topic_arn, queue_url=queue_url,
        dlq_url=dlq_url, data_dir=tmp_path / "data", clip_root=tmp_path / "incoming",
        verifier="tests.unit.cloud_factories:stand_in_verify_factory",
    )
    return Aws(moto_endpoint, settings, s3, ddb, sqs, sns, queue_url, subscriber_url)
