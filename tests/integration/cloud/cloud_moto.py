"""The moto-backed AWS handles a cloud integration test gets (built by the `aws` fixture in conftest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloud.settings import CloudSettings
from cloud.trust import Identity, envelope_body
from contracts import Candidate


@dataclass
class Aws:
    endpoint: str
    settings: CloudSettings
    s3: Any
    dynamodb: Any
    sqs: Any
    sns: Any
    queue_url: str
    subscriber_url: str  # what a customer subscribed for camera "cam-front" receives

    def receive_all(self, queue_url: str, wait_s: int = 1) -> list[dict]:
        """Drain a queue (deleting what it reads)."""
        out: list[dict] = []
        while True:
            resp = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s,
                                            MessageAttributeNames=["All"], VisibilityTimeout=30)
            msgs = resp.get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            out.extend(msgs)
            wait_s = 0

    @staticmethod
    def envelope(candidate: Candidate, thing: str = "gw-1") -> str:
        """The SQS body the IoT rule makes of a candidate published by `thing`."""
        return envelope_body(candidate, Identity(thing))
