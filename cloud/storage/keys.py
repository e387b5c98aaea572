"""Key layout `clips/{camera_id}/{yyyy}/{mm}/{dd}/{event_id}.{ext}` and the tags lifecycle rules key on.

Every part is validated: ids end up in S3 keys and local paths, so no part may carry a path trick. Camera
and event ids follow the contract's one rule (`contracts.validate_camera_id`, `contracts.validate_event_id`).
"""

from __future__ import annotations

import re
from datetime import datetime

from cloud.events.record import as_utc
from contracts import validate_camera_id, validate_event_id

_EXT_RE = re.compile(r"^[a-z0-9]{1,8}$")
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,1023}$")
# S3 tag values allow letters, digits, space and + - = . _ : / @ (max 256).
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9 +\-=._:/@]")


def validate_key(key: str) -> str:
    """Keys we accept for reading and writing: relative, no `..`, no empty segment."""
    if not _KEY_RE.match(key) or ".." in key.split("/") or "//" in key or key.endswith("/"):
        raise ValueError(f"object key {key!r} is not valid")
    return key


def clip_key(camera_id: str, event_id: str, started_at: datetime, ext: str) -> str:
    ext = ext.lower().lstrip(".")
    if not _EXT_RE.match(ext):
        raise ValueError(f"clip extension {ext!r} is not valid")
    day = as_utc(started_at)
    return (
        f"clips/{validate_camera_id(camera_id)}/{day:%Y}/{day:%m}/{day:%d}/"
        f"{validate_event_id(event_id)}.{ext}"
    )


def snapshot_key(camera_id: str, event_id: str, started_at: datetime) -> str:
    return clip_key(camera_id, event_id, started_at, "jpg")


def tag_value(value: str) -> str:
    return _TAG_UNSAFE.sub("_", value)[:256] or "_"


def media_tags(camera_id: str, verdict: str, model_version: str) -> dict[str, str]:
    """Tags on every clip and snapshot: lifecycle rules (expire rejected early) and cost allocation."""
    return {
        "camera": tag_value(camera_id),
        "verdict": tag_value(verdict),
        "model_version": tag_value(model_version),
    }
