"""The event list's query string → EventStore.query arguments, every value checked (a bad one is a 400)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from contracts import validate_camera_id

VERDICTS = ("confirmed", "rejected", "uncertain")
LABELS = ("person", "not-person", "unsure")
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_PARAMS = frozenset({"camera", "verdict", "since", "until", "score_low", "score_high", "label", "limit"})


class BadQuery(ValueError):
    """A query parameter is unknown, repeated or out of range; the message names it and the bad value."""


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadQuery(f"{name} given {len(values)} times; give it once")
    value = values[0].strip()
    return value or None


def _score(params: dict[str, list[str]], name: str) -> float | None:
    text = _one(params, name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadQuery(f"{name}={text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise BadQuery(f"{name}={text!r} is outside 0..1")
    return value


def parse_time(text: str, name: str) -> datetime:
    """ISO 8601 (`2026-11-28T09:00:00Z`, with or without zone; none means UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{name}={text!r} is not an ISO 8601 time (e.g. 2026-11-28T09:00:00Z)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def event_filters(query: str) -> dict[str, Any]:
    """Keyword arguments for `EventStore.query` from a URL query string."""
    params = parse_qs(query, keep_blank_values=True, max_num_fields=len(_PARAMS) * 2)
    unknown = sorted(set(params) - _PARAMS)
    if unknown:
        raise BadQuery(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(_PARAMS))}")
    out: dict[str, Any] = {}
    if (camera := _one(params, "camera")) is not None:
        try:
            out["camera_id"] = validate_camera_id(camera)
        except ValueError as exc:
            raise BadQuery(str(exc)) from None
    if (verdict := _one(params, "verdict")) is not None:
        if verdict not in VERDICTS:
            raise BadQuery(f"verdict={verdict!r} is not one of {', '.join(VERDICTS)}")
        out["decision"] = verdict
    if (label := _one(params, "label")) is not None:
        if label not in LABELS:
            raise BadQuery(f"label={label!r} is not one of {', '.join(LABELS)}")
        out["label"] = label
    for name in ("since", "until"):
        if (text := _one(params, name)) is not None:
            out[name] = parse_time(text, name)
    if "since" in out and "until" in out and out["since"] > out["until"]:
        raise BadQuery("since is after until")
    for name in ("score_low", "score_high"):
        if (value := _score(params, name)) is not None:
            out[name] = value
    if out.get("score_low", 0.0) > out.get("score_high", 1.0):
        raise BadQuery("score_low is above score_high")
    limit = _one(params, "limit")
    if limit is None:
        out["limit"] = DEFAULT_LIMIT
    else:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise BadQuery(f"limit={limit!r} is not a whole number in 1..{MAX_LIMIT}")
        out["limit"] = int(limit)
    return out
