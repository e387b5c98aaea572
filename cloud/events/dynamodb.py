"""Event store in DynamoDB: one item per event, written with a conditional put.

Indexes: `camera-time` (camera_id + started_at ISO) for a camera's history, `score-band`
(score_bucket = UTC day + score number) for the sampler's near-threshold query, `label-time` (label +
started_at; sparse: only labelled events have `label`) for feedback. `expires_at` is the TTL.

`query` picks the narrowest index: camera → camera-time, label → label-time, a time window → the day
partitions of score-band, nothing → a table scan (an operator's listing; costs a read of the table).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cloud.aws import aws_client
from cloud.events.record import EventRecord, as_utc, iso_utc, score_bucket_for
from contracts import validate_event_id

if TYPE_CHECKING:
    from cloud.feedback.model import FeedbackEntry

CAMERA_TIME_INDEX = "camera-time"
SCORE_BAND_INDEX = "score-band"
LABEL_TIME_INDEX = "label-time"
FEEDBACK_RETRIES = 5
TTL_ATTRIBUTE = "expires_at"
# The processing claim is its own small item in the same table (key: event id + this suffix), so the event's
# item is still written once by put_if_absent; it has no index keys (in no GSI) and expires by TTL.
CLAIM_SUFFIX = "#processing"
CLAIM_TTL_S = 86_400


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
            {"AttributeName": "label", "AttributeType": "S"},
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
            {
                "IndexName": LABEL_TIME_INDEX,
                "KeySchema": [
                    {"AttributeName": "label", "KeyType": "HASH"},
                    {"AttributeName": "started_at", "KeyType": "RANGE"},
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

    def claim_processing(self, event_id: str, now: datetime, lease_s: float) -> bool:
        """Conditional upsert: no claim yet, or the last one is older than the lease (its worker crashed)."""
        ts = now.timestamp()
        try:
            self.client.update_item(
                TableName=self.table, Key={"event_id": {"S": validate_event_id(event_id) + CLAIM_SUFFIX}},
                UpdateExpression="SET claimed_at = :now, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(claimed_at) OR claimed_at < :stale",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":now": {"N": repr(ts)}, ":stale": {"N": repr(ts - lease_s)},
                    ":ttl": {"N": str(int(ts) + CLAIM_TTL_S)},
                },
            )
        except Exception as exc:
            if self._conditional_failed(exc):
                return False
            raise
        return True

    def release_processing(self, event_id: str) -> None:
        # Deleted, not emptied: between deliveries the table holds events only (raw scans, item counts)
        self.client.delete_item(
            TableName=self.table, Key={"event_id": {"S": validate_event_id(event_id) + CLAIM_SUFFIX}},
        )

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

    def _query(self, limit: int, operation: str = "query", **kwargs: Any) -> Iterator[EventRecord]:
        count = 0
        start: dict[str, Any] | None = None
        call = getattr(self.client, operation)
        while count < limit:
            page = call(
                TableName=self.table, Limit=max(1, limit - count), **kwargs,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            for item in page.get("Items", []):
                if "camera_id" not in item:  # a processing claim (a scan sees every item), not an event
                    continue
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

    # -- feedback ----------------------------------------------------------------------------------
    def set_feedback(self, event_id: str, entry: FeedbackEntry) -> EventRecord:
        """Store `entry` as the event's latest label; the same label again changes nothing. Optimistic: the
        write is conditional on the history read, so two labels given at once both land (in some order)."""
        from cloud.feedback.model import UnknownEvent

        event_id = validate_event_id(event_id)
        for _ in range(FEEDBACK_RETRIES):
            record = self.get(event_id)
            if record is None:
                raise UnknownEvent(event_id)
            updated = record.with_feedback(entry)
            if updated is None:
                return record
            # items written before feedback existed have no history attribute at all
            condition = "attribute_exists(event_id) AND (attribute_not_exists(feedback_json) OR feedback_json = :old)"
            values = {":label": {"S": updated.label}, ":at": {"S": updated.labeled_at},
                      ":history": {"S": updated.feedback_json}, ":old": {"S": record.feedback_json}}
            try:
                self.client.update_item(
                    TableName=self.table, Key={"event_id": {"S": event_id}},
                    UpdateExpression="SET #label = :label, labeled_at = :at, feedback_json = :history",
                    ConditionExpression=condition, ExpressionAttributeNames={"#label": "label"},
                    ExpressionAttributeValues=values,
                )
            except Exception as exc:
                if self._conditional_failed(exc):
                    continue  # someone labelled it meanwhile: read again and add ours after theirs
                raise
            return updated
        raise RuntimeError(f"event {event_id}: feedback kept changing; gave up after {FEEDBACK_RETRIES} tries")

    def query(
        self,
        camera_id: str | None = None,
        decision: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        label: str | None = None,
        score_low: float | None = None,
        score_high: float | None = None,
        limit: int = 100,
    ) -> list[EventRecord]:
        """Events matching every filter given, newest first (by start time)."""
        limit = max(0, int(limit))
        if limit == 0:
            return []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters: list[str] = []

        def where(attribute: str, op: str, value: Any, key: str) -> None:
            names[f"#{key}"] = attribute
            values[f":{key}"] = self._ser.serialize(_to_dynamo(value))
            filters.append(f"#{key} {op} :{key}")

        if decision is not None:
            where("decision", "=", decision, "decision")
        if score_low is not None:
            where("score", ">=", score_low, "score_low")
        if score_high is not None:
            where("score", "<=", score_high, "score_high")
        lo = iso_utc(since) if since is not None else "0"
        hi = iso_utc(until) if until is not None else "~"  # after every ISO text

        def search(index: str, hash_attr: str, hash_value: str, in_range: bool = True) -> Iterator[EventRecord]:
            args: dict[str, Any] = {
                "IndexName": index, "ScanIndexForward": False,
                "KeyConditionExpression": "#h = :h" + (" AND started_at BETWEEN :lo AND :hi" if in_range else ""),
                "ExpressionAttributeNames": {**names, "#h": hash_attr},
                "ExpressionAttributeValues": {**values, ":h": {"S": hash_value},
                                              **({":lo": {"S": lo}, ":hi": {"S": hi}} if in_range else {})},
            }
            extra = list(filters)
            if hash_attr == "camera_id" and label is not None:
                args["ExpressionAttributeNames"]["#label"] = "label"
                args["ExpressionAttributeValues"][":label"] = {"S": label}
                extra.append("#label = :label")
            if not in_range:
                extra.append("started_at BETWEEN :lo AND :hi")
                args["ExpressionAttributeValues"].update({":lo": {"S": lo}, ":hi": {"S": hi}})
            if extra:
                args["FilterExpression"] = " AND ".join(extra)
            return self._query(limit, **args)

        if camera_id is not None:
            return list(search(CAMERA_TIME_INDEX, "camera_id", camera_id))
        if label is not None:
            return list(search(LABEL_TIME_INDEX, "label", label))
        if since is not None:  # one score-band partition a day, newest day first
            out: list[EventRecord] = []
            day = as_utc(until or datetime.now(UTC)).date()
            first = as_utc(since).date()
            while day >= first and len(out) < limit:
                bucket = score_bucket_for(datetime(day.year, day.month, day.day))
                found = list(self._query(10_000, **self._day_args(bucket, names, values, filters, lo, hi)))
                out.extend(sorted(found, key=lambda r: (r.started_at, r.event_id), reverse=True))
                day -= timedelta(days=1)
            return out[:limit]
        scan_args: dict[str, Any] = {}
        if filters or until is not None:
            extra = [*filters, "started_at <= :hi"] if until is not None else list(filters)
            scan_args = {"FilterExpression": " AND ".join(extra),
                         "ExpressionAttributeNames": names or None,
                         "ExpressionAttributeValues": {**values, **({":hi": {"S": hi}} if until else {})}}
            scan_args = {k: v for k, v in scan_args.items() if v}
        found = list(self._query(1_000_000, operation="scan", **scan_args))
        return sorted(found, key=lambda r: (r.started_at, r.event_id), reverse=True)[:limit]

    @staticmethod
    def _day_args(bucket: str, names: dict[str, str], values: dict[str, Any], filters: list[str],
                  lo: str, hi: str) -> dict[str, Any]:
        args: dict[str, Any] = {
            "IndexName": SCORE_BAND_INDEX,
            "KeyConditionExpression": "score_bucket = :b",
            "FilterExpression": " AND ".join([*filters, "started_at BETWEEN :lo AND :hi"]),
            "ExpressionAttributeValues": {**values, ":b": {"S": bucket}, ":lo": {"S": lo}, ":hi": {"S": hi}},
        }
        if names:
            args["ExpressionAttributeNames"] = names
        return args
