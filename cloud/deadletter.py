"""Dead letters: messages that cannot be processed, kept with their reason and raw body (nothing is lost).

SQS adapter: the raw body goes to the DLQ unchanged (so a redrive to the source queue re-processes it
once the cause is fixed) and the reason travels in message attributes. Folder adapter: one JSON file each.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud.aws import aws_client

log = logging.getLogger(__name__)

_MAX_ERROR = 1000  # SQS attribute values and log lines stay small
_EMPTY_BODY = "<empty>"


class FolderDeadLetter:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root

    def send(self, raw_body: str, reason: str, error: str, event_id: str | None = None) -> str:
        now = datetime.now(UTC)
        letter_id = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        doc = {"id": letter_id, "reason": reason, "error": error[:_MAX_ERROR], "event_id": event_id,
               "dead_lettered_at": now.isoformat(), "raw_body": raw_body}
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / f"{letter_id}.json")
        log.warning("dead-lettered: %s", reason, extra={"event_id": event_id, "dead_letter": letter_id})
        return letter_id

    def list(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.root.glob("*.json"))]


class SqsDeadLetter:
    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        if not queue_url:
            raise ValueError("SqsDeadLetter needs a queue URL (VIGIA_DLQ_URL)")
        self.queue_url = queue_url
        client = aws_client("sqs", client)
        self.client = client

    def send(self, raw_body: str, reason: str, error: str, event_id: str | None = None) -> str:
        attrs = {
            "reason": {"DataType": "String", "StringValue": reason},
            "error": {"DataType": "String", "StringValue": error[:_MAX_ERROR] or "-"},
        }
        if event_id:
            attrs["event_id"] = {"DataType": "String", "StringValue": event_id}
        resp = self.client.send_message(
            QueueUrl=self.queue_url, MessageBody=raw_body or _EMPTY_BODY, MessageAttributes=attrs
        )
        log.warning("dead-lettered: %s", reason, extra={"event_id": event_id, "dead_letter": resp["MessageId"]})
        return str(resp["MessageId"])
