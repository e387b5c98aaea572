"""Notifications to customers: SNS in AWS, a JSONL file embedded. Only confirmed events, once each."""

from cloud.notify.message import Notification

__all__ = ["Notification"]
