"""Notifications through an SNS topic, with message attributes subscribers can filter on."""

from __future__ import annotations

from typing import Any

from cloud.aws import aws_client
from cloud.notify.message import Notification


class SnsNotifier:
    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        if not topic_arn:
            raise ValueError("SnsNotifier needs a topic ARN (VIGIA_TOPIC_ARN)")
        self.topic_arn = topic_arn
        client = aws_client("sns", client)
        self.client = client

    def publish(self, notification: Notification) -> str:
        resp = self.client.publish(
            TopicArn=self.topic_arn,
            Message=notification.model_dump_json(),
            Subject=f"Person on camera {notification.camera_id}"[:100],
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in notification.attributes().items()
            },
        )
        return str(resp["MessageId"])
