"""Structured logs: one JSON object per line, with the event id wherever there is one.

Credentials never reach a line: the message, every extra value (strings nested in lists and dicts
too, and odd objects once turned into text) and the exception text go through `contracts.redact_uri`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from contracts import redact_uri

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_uri(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = _redacted(value)
        if record.exc_info:
            line["error"] = redact_uri(self.formatException(record.exc_info))
        elif record.exc_text:
            line["error"] = redact_uri(record.exc_text)
        if record.stack_info:
            line["stack"] = redact_uri(record.stack_info)
        return json.dumps(line, default=lambda value: _redacted(_plain(value)))


def _redacted(value: Any, depth: int = 0) -> Any:
    """`value` with every string in it redacted (keys too); containers are copied, never changed."""
    if isinstance(value, str):
        return redact_uri(value)
    if depth > 16:  # a deeper (or self-referencing) structure is not log material
        return "<nested too deep>"
    if isinstance(value, dict):
        return {_redacted(k, depth + 1) if isinstance(k, str) else k: _redacted(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        return redact_uri(bytes(value).decode("utf-8", "replace"))
    return value


def _plain(value: Any) -> Any:
    """numpy scalars and other odd values (paths, exceptions, models) become plain JSON."""
    if hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):  # an array of several values
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "urllib3", "nncf", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
