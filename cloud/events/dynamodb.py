"""Event store in DynamoDB: one item per event, written with a conditional put.

Indexes: `camera-time` (camera_id + started_at ISO) for a camera's history, `score-band`
(score_bucket = UTC day + score number) for the sampler's near-threshold query. `expires_at` is the TTL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from cloud.aws import aws_client
from cloud.events.record import EventRecord, iso_utc
from contracts import validate_event_id

CAMERA_TIME_INDEX = "camera-time"
SCORE_BAND_INDEX = "score-band"
TTL_ATTRIBUTE = "expires_at"


def table_definition(name: str) -> dict[str, Any]:
    """create_table arguments; cloud/infra/template.yaml declares the same (a unit test compares them)."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "event_id", "AttributeType": "S"},
            {"AttributeName": "camera_id", "AttributeType": "S"},
            {"AttributeName": "started_at", "AttributeType": "S"},
            {"AttributeName": "score_bucket", "AttributeType": "S"},
            {"AttributeName": "score", "AttributeType": "N"},
        ],
        "KeySchema": [{"AttributeName": "event_id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": CAMERA_TIME_INDEX,
                "KeySchema": [
                    {"AttributeName": "camera_id", "KeyType": "HASH"},
                    {"AttributeName": "started_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": SCORE_BAND_INDEX,
                "KeySchema": [
                    {"AttributeName": "score_bucket", "KeyType": "HASH"},
                    {"AttributeName": "score", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    }


def create_table(client: Any, name: str) -> None:
    """For local setups (moto server, a dev account); production uses the CloudFormation template."""
    client.create_table(**table_definition(name))
    client.get_waiter("table_exists").wait(TableName=name)
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    return value


class DynamoEventStore:
    def __init__(self, table: str, client: Any | None = None) -> None:
        if not table:
            raise ValueError("DynamoEventStore needs a table name (VIGIA_TABLE)")
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.table = table
        client = aws_client("dynamodb", client)
        self.client = client
        self._ser = TypeSerializer()
        self._de = TypeDeserializer()

    def _item(self, record: EventRecord) -> dict[str, Any]:
        plain = _to_dynamo(record.model_dump(exclude_none=True))
        return {k: self._ser.serialize(v) for k, v in plain.items()}

    def _record(self, item: dict[str, Any]) -> EventRecord:
        return EventRecord.model_validate(_from_dynamo({k: self._de.deserialize(v) for k, v in item.items()}))

    def _conditional_failed(self, exc: Exception) -> bool:
        return type(exc).__name__ == "ConditionalCheckFailedException" or getattr(exc, "response", {}).get(
            "Error", {}
        ).get("Code") == "ConditionalCheckFailedException"

    def put_if_absent(self, record: EventRecord) -> bool:
        try:
            self.client.put_item(
                TableName=self.table, Item=self._item(record),
                ConditionExpression="attribute_not_exists(event_id)",
            )
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise
        return True

    def get(self, event_id: str) -> EventRecord | None:
        resp = self.client.get_item(
            TableName=self.table, Key={"event_id": {"S": validate_event_id(event_id)}}, ConsistentRead=True
        )
        return self._record(resp["Item"]) if "Item" in resp else None

    def claim_notification(self, event_id: str, now: datetime, lease_s: float) -> bool:
        ts = now.timestamp()
        try:
            self.client.update_item(
                TableName=self.table, Key={"event_id": {"S": event_id}},
                UpdateExpression="SET notify_claimed_at = :now",
                ConditionExpression="attribute_exists(event_id) AND notified = :false AND "
                "(attribute_not_exists(notify_claimed_at) OR notify_claimed_at < :stale)",
                ExpressionAttributeValues={
                    ":now": {"N": repr(ts)}, ":stale": {"N": repr(ts - lease_s)}, ":false": {"BOOL": False},
                },
            )
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise
        return True

    def release_notification(self, event_id: str, claimed_at: float) -> None:
        try:
            self.client.update_item(
                TableName=self.table, Key={"event_id": {"S": event_id}},
                UpdateExpression="REMOVE notify_claimed_at",
                ConditionExpression="notified = :false AND notify_claimed_at = :mine",
                ExpressionAttributeValues={":false": {"BOOL": False}, ":mine": {"N": repr(claimed_at)}},
            )
        except Exception as exc:
            if not self._conditional_failed(exc):
                raise

    def mark_notified(self, event_id: str, at: datetime, message_id: str) -> None:
        self.client.update_item(
            TableName=self.table, Key={"event_id": {"S": event_id}},
            UpdateExpression="SET notified = :true, notified_at = :at, notification_id = :mid",
            ConditionExpression="attribute_exists(event_id)",
            ExpressionAttributeValues={
                ":true": {"BOOL": True}, ":at": {"S": iso_utc(at)}, ":mid": {"S": message_id},
            },
        )

    def _query(self, limit: int, **kwargs: Any) -> Iterator[EventRecord]:
        count = 0
        start: dict[str, Any] | None = None
        while count < limit:
            page = self.client.query(
                TableName=self.table, Limit=limit - count, **kwargs,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            for item in page.get("Items", []):
                count += 1
                yield self._record(item)
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def by_camera(self, camera_id: str, since: datetime, until: datetime, limit: int = 100) -> list[EventRecord]:
        return list(self._query(
            limit, IndexName=CAMERA_TIME_INDEX,
            KeyConditionExpression="camera_id = :c AND started_at BETWEEN :a AND :b",
            ExpressionAttributeValues={
                ":c": {"S": camera_id}, ":a": {"S": iso_utc(since)}, ":b": {"S": iso_utc(until)},
            },
        ))

    def by_score_band(self, score_bucket: str, low: float, high: float, limit: int = 100) -> list[EventRecord]:
        return list(self._query(
            limit, IndexName=SCORE_BAND_INDEX,
            KeyConditionExpression="score_bucket = :b AND score BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":b": {"S": score_bucket}, ":lo": {"N": repr(low)}, ":hi": {"N": repr(high)},
            },
        ))
