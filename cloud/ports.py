"""The cloud's ports: each outside service behind a small interface with an AWS and an embedded adapter.

Also the failure kinds the runtimes act on: permanent ones are dead-lettered at once, the rest retried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cloud.events.record import EventRecord
from cloud.notify.message import Notification
from contracts import Candidate, ClipRef, Verdict

if TYPE_CHECKING:
    from cloud.feedback.model import FeedbackEntry


class PermanentError(Exception):
    """Retrying cannot help (malformed message, path trick, unreadable clip): dead-letter it now."""

    reason = "permanent"


class MalformedMessage(PermanentError):
    """The body is not a valid candidate of a schema version we speak."""

    reason = "malformed"


class ClipRejected(PermanentError):
    """The clip reference is unsafe or names a transport we have no adapter for."""

    reason = "clip_rejected"


class ClipUnreadable(PermanentError):
    """The clip file exists but cannot be decoded."""

    reason = "clip_unreadable"


class TransientError(Exception):
    """Worth another try later (clip not uploaded yet, throttling, another worker mid-notification)."""


class ClipNotFound(TransientError):
    """The clip is not there (yet): the gateway may still be uploading it."""


class NotificationPending(TransientError):
    """Another delivery holds the notification lease: try again after it expires."""


class ProcessingInProgress(TransientError):
    """Another delivery of the same event is being verified now: try again later (its record answers then)."""


# The verifier's decision, injected into the pipeline: (candidate, local clip path or None) -> verdict.
VerifyFn = Callable[[Candidate, Path | None], Verdict]


@runtime_checkable
class ClipSource(Protocol):
    """Resolves a ClipRef to a readable local file."""

    def fetch(self, ref: ClipRef, workdir: Path) -> Path:
        """Return a local path to the clip; adapters that download write into `workdir` (caller cleans up)."""
        ...


@runtime_checkable
class ObjectStore(Protocol):
    """Blob storage for clips and snapshots (S3 or a local folder), with tags for lifecycle rules."""

    def put_bytes(self, key: str, data: bytes, content_type: str, tags: Mapping[str, str]) -> str: ...

    def put_file(self, key: str, path: Path, content_type: str, tags: Mapping[str, str]) -> str: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_tags(self, key: str) -> dict[str, str]: ...


@runtime_checkable
class EventStore(Protocol):
    """One record per event, written once; the notification flag makes alerts once-per-event."""

    def put_if_absent(self, record: EventRecord) -> bool:
        """Insert; False if an item with this event id already exists (nothing is changed then)."""
        ...

    def get(self, event_id: str) -> EventRecord | None: ...

    def claim_processing(self, event_id: str, now: datetime, lease_s: float) -> bool:
        """Take the right to verify the event: True if no other delivery holds a live claim (one older than
        `lease_s` is presumed crashed and is taken over). The claim is separate from the record."""
        ...

    def release_processing(self, event_id: str) -> None:
        """Drop the processing claim (after the record is written, or after a failure so a retry may verify)."""
        ...

    def claim_notification(self, event_id: str, now: datetime, lease_s: float) -> bool:
        """Take the right to notify: True if not notified yet and no live claim by another delivery."""
        ...

    def release_notification(self, event_id: str, claimed_at: float) -> None:
        """Give the claim (epoch s it was taken at) back after a failed publish, if still ours."""
        ...

    def mark_notified(self, event_id: str, at: datetime, message_id: str) -> None: ...

    def by_camera(
        self, camera_id: str, since: datetime, until: datetime, limit: int = 100
    ) -> list[EventRecord]: ...

    def by_score_band(self, score_bucket: str, low: float, high: float, limit: int = 100) -> list[EventRecord]: ...

    def set_feedback(self, event_id: str, entry: FeedbackEntry) -> EventRecord:
        """Store `entry` as the event's latest label (history bounded to 20); the same label by the same person
        again changes nothing. Raises cloud.feedback.UnknownEvent for an unknown id."""
        ...

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
        """Events matching every filter given, newest first."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """Tells the customer about a confirmed person (SNS topic or a JSONL file)."""

    def publish(self, notification: Notification) -> str:
        """Send it; return the message id."""
        ...


@runtime_checkable
class DeadLetter(Protocol):
    """Where messages that cannot be processed go, with the reason and the raw body: nothing is lost."""

    def send(self, raw_body: str, reason: str, error: str, event_id: str | None = None) -> str: ...


@runtime_checkable
class ThingRegistry(Protocol):
    """Our own record of gateways (IoT thing attributes, or a table on the embedded default): the site an
    alert belongs to comes from here, never from the message body."""

    def site_of(self, thing: str) -> str | None:
        """The thing's site, or None if it is not registered (or has no site)."""
        ...
