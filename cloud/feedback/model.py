"""Feedback on an event: who said what about it, and when. Stored on the event (latest label + history)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

Label = Literal["person", "not-person", "unsure"]
Source = Literal["cli", "api", "console"]
LABELS: tuple[str, ...] = get_args(Label)
SOURCES: tuple[str, ...] = get_args(Source)
MAX_HISTORY = 20  # entries kept on an event: a record stays small however often it is relabelled
MAX_NOTE_CHARS = 500


class UnknownEvent(LookupError):
    """No event with this id in the store."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"no event {event_id!r} in the event store")
        self.event_id = event_id


def parse_label(value: str) -> Label:
    """The label, or ValueError naming the allowed ones (`not_person` and case are forgiven)."""
    text = str(value).strip().lower().replace("_", "-")
    if text not in LABELS:
        raise ValueError(f"label {value!r} is not one of {', '.join(LABELS)}")
    return text  # type: ignore[return-value]


class FeedbackEntry(BaseModel):
    """One label given to one event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Label
    by: str = Field(min_length=1, max_length=128, description="who gave it (user, reviewer, app account)")
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="when, UTC")
    source: Source = "cli"

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("by", "note")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 and c not in "\t\n" for c in value):
            raise ValueError("control characters are not allowed")
        return value

    def same_as(self, other: FeedbackEntry) -> bool:
        """The same label by the same person (and the same note): giving it again changes nothing."""
        return (self.label, self.by, self.note) == (other.label, other.by, other.note)


def history_of(feedback_json: str) -> list[FeedbackEntry]:
    """The stored history (oldest first); an empty or unreadable field is an empty history."""
    try:
        items = json.loads(feedback_json or "[]")
    except ValueError:
        return []
    return [FeedbackEntry.model_validate(i) for i in items if isinstance(i, dict)]


def history_json(entries: list[FeedbackEntry]) -> str:
    return json.dumps([e.model_dump(mode="json") for e in entries[-MAX_HISTORY:]], separators=(",", ":"))
