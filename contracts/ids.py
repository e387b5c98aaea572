"""Event ids: ULIDs (26 chars, Crockford base32), unique and sortable by creation time.

Generated with the standard library so `contracts` stays dependency-free.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import UTC, datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EVENT_ID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
_EVENT_ID_RE = re.compile(EVENT_ID_PATTERN)

# One camera-id rule for the contract, the gateway's files and the cloud's keys: ids end up in paths and S3
# keys, so no "..", no leading dot or dash, nothing but letters, digits, "_", "." and "-".
CAMERA_ID_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_CAMERA_ID_RE = re.compile(CAMERA_ID_PATTERN)

_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_event_id(now: float | None = None) -> str:
    """A new ULID. Monotonic within one process: ids made in the same millisecond still sort.

    `now` (epoch seconds) stamps an id for a past or future moment, outside the monotonic sequence.
    """
    global _last_ms, _last_rand
    if now is not None:
        return _encode(int(now * 1000), 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)
    ms = int(time.time() * 1000)
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            rand = (_last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand
    return _encode(ms, 10) + _encode(rand, 16)


def validate_event_id(value: str) -> str:
    """Return the id if it is a well-formed ULID, else raise ValueError (ids end up in S3 keys and paths)."""
    if not isinstance(value, str) or not _EVENT_ID_RE.match(value):
        raise ValueError(f"event_id must be a 26-character ULID, got {value!r}")
    return value


def event_id_time(event_id: str) -> datetime:
    """The creation time encoded in an event id."""
    validate_event_id(event_id)
    ms = 0
    for ch in event_id[:10]:
        ms = ms * 32 + _ALPHABET.index(ch)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def validate_camera_id(value: str) -> str:
    """Return the id if it is a valid camera id, else raise ValueError naming the value."""
    if not isinstance(value, str) or not _CAMERA_ID_RE.match(value):
        raise ValueError(
            f"camera id {value!r} is not valid: 1-64 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit, no '..'"
        )
    return value
