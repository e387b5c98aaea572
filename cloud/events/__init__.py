"""Event store: one record per event (DynamoDB in AWS, SQLite embedded)."""

from cloud.events.record import EventRecord, score_bucket_for

__all__ = ["EventRecord", "score_bucket_for"]
