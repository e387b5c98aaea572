"""Process one candidate end to end: parse → admit (identity, clip confinement, site from the registry) →
idempotency check → fetch clip → verify → store media → conditional put of the event → notify once if confirmed.

Failure policy: a PermanentError is dead-lettered here, with its reason, and the message counts as handled:
malformed body or envelope, no connection identity (AWS mode), a body that claims another gateway or camera,
an unregistered thing, a clip outside the gateway's own prefix/stream/folder, nothing to verify, an
undecodable clip, ids or values storage refuses. Anything else (throttling, network, a clip not uploaded yet,
another delivery mid-notification) is raised for the runtime to retry (SQS redelivery, whose redrive policy
moves it to the DLQ after its max receive count).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from cloud import metrics
from cloud.events.record import EventRecord
from cloud.metrics import verifier as verifier_metrics
from cloud.notify.message import Notification
from cloud.ports import (
    ClipSource,
    DeadLetter,
    EventStore,
    MalformedMessage,
    NotificationPending,
    Notifier,
    ObjectStore,
    PermanentError,
    ProcessingInProgress,
    ThingRegistry,
    VerifyFn,
)
from cloud.storage.keys import clip_key, media_tags, snapshot_key
from cloud.trust import (
    Identity,
    IdentityMismatch,
    NoConnectionIdentity,
    NothingToVerify,
    ThingNotRegistered,
    check_identity,
    confine_clip,
    is_envelope,
    parse_envelope,
)
from contracts import Candidate, Verdict
from contracts.errors import describe_validation_error

log = logging.getLogger(__name__)

SUPPORTED_SCHEMA_VERSIONS = frozenset({1})


@dataclass(frozen=True)
class Outcome:
    """What happened to one message; timestamps are epoch seconds (for latency measurements)."""

    event_id: str | None
    verdict: Verdict | None
    status: str  # "processed" | "duplicate" | "dead_lettered"
    created: bool = False
    notified: bool = False
    received_at: float = 0.0
    stored_at: float | None = None
    notified_at: float | None = None
    dead_letter_id: str | None = None


def load_body(body: bytes | str) -> dict:
    """The wire message as a JSON object; anything else is a MalformedMessage."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedMessage(f"body is a JSON {type(data).__name__}, expected an object")
    return data


def parse_candidate(body: bytes | str) -> Candidate:
    """Validate a bare candidate message; any problem is a MalformedMessage naming what is wrong."""
    return validate_candidate(load_body(body))


def validate_candidate(data: dict) -> Candidate:
    version = data.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        speaks = sorted(SUPPORTED_SCHEMA_VERSIONS)
        raise MalformedMessage(f"schema_version {version!r} is not supported (speaks {speaks})")
    try:
        return Candidate.model_validate(data)
    except ValidationError as exc:
        raise MalformedMessage(f"invalid candidate: {describe_validation_error(exc)}") from exc


def event_id_of(body: bytes | str) -> str | None:
    """Best-effort event id of a broken message, for the dead letter and the log line."""
    try:
        data = json.loads(body)
        if is_envelope(data) and isinstance(data["candidate"], dict):
            data = data["candidate"]
        value = data.get("event_id")
        return value if isinstance(value, str) and len(value) <= 64 else None
    except Exception:
        return None


class Pipeline:
    def __init__(
        self,
        *,
        clips: ClipSource,
        objects: ObjectStore,
        events: EventStore,
        notifier: Notifier,
        dead_letter: DeadLetter,
        verify: VerifyFn,
        ttl_days: int = 90,
        notify_lease_s: float = 30.0,
        processing_lease_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        registry: ThingRegistry | None = None,
        require_identity: bool = False,
        media_bucket: str | None = None,
    ) -> None:
        """`require_identity` (AWS mode): a bare candidate, with no envelope from the IoT rule and no identity
        from the runtime, is refused; and a thing the registry does not know is refused. On the embedded
        default a bare candidate comes from the local gateway, whose own site stands unless the registry
        lists it. `media_bucket`: the only bucket s3:// clip references may name."""
        self.clips = clips
        self.objects = objects
        self.events = events
        self.notifier = notifier
        self.dead_letter = dead_letter
        self.verify = verify
        self.ttl_days = ttl_days
        self.notify_lease_s = notify_lease_s
        # a delivery still verifying after this long is presumed crashed: the next one takes over
        self.processing_lease_s = processing_lease_s
        self.clock = clock
        self.registry = registry
        self.require_identity = require_identity
        self.media_bucket = media_bucket

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def process(self, candidate_json: bytes | str) -> Verdict | None:
        """The verdict (stored one on redelivery), or None if the message was dead-lettered."""
        return self.handle(candidate_json).verdict

    def handle(self, body: bytes | str | Candidate, received_at: float | None = None, *,
               identity: Identity | None = None) -> Outcome:
        """`body`: the IoT rule's envelope or a bare candidate; `identity`: what the runtime itself knows of
        the connection (the in-process runtime, an MQTT consumer's topic), if anything."""
        received_at = self.clock() if received_at is None else received_at
        raw = body.model_dump_json() if isinstance(body, Candidate) else body
        try:
            candidate = self.admit(body, identity)
            with metrics.correlation(candidate.event_id):
                return self._handle(candidate, received_at)
        except PermanentError as exc:
            return self.reject(raw, exc, received_at)

    def reject(self, raw: bytes | str, exc: Exception, received_at: float) -> Outcome:
        """Dead-letter a message with its reason; also used by runtimes once retries are exhausted."""
        event_id = event_id_of(raw)
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        reason = getattr(exc, "reason", "failed")
        log.error("candidate rejected (%s): %s", reason, exc, extra={"event_id": event_id})
        letter = self.dead_letter.send(text, reason, str(exc), event_id=event_id)
        verifier_metrics.dead_lettered(reason)
        return Outcome(event_id, None, "dead_lettered", received_at=received_at, dead_letter_id=letter)

    def admit(self, body: bytes | str | Candidate, identity: Identity | None = None) -> Candidate:
        """Parse, check the body against the connection's identity and confine its clip; the candidate
        returned carries the registry's site. Raises a PermanentError subclass for whatever it refuses."""
        if isinstance(body, Candidate):
            candidate = body
        else:
            data = load_body(body)
            if is_envelope(data):
                envelope = parse_envelope(data)
                if identity is not None and identity.thing_name != envelope.thing_name:
                    raise IdentityMismatch(f"envelope names thing {envelope.thing_name!r}, the connection "
                                           f"{identity.thing_name!r}")
                identity = identity or envelope.identity
                data = envelope.candidate
            candidate = validate_candidate(data)
        if identity is None:
            if self.require_identity:
                raise NoConnectionIdentity("no connection identity: a bare candidate, not the IoT rule's "
                                           "envelope (candidate, thing_name, received_at)")
            identity = Identity(candidate.gateway_id)  # embedded: the local gateway itself
        check_identity(candidate, identity)
        if candidate.clip is not None:
            confine_clip(candidate.clip, identity.thing_name, candidate.camera_id, self.media_bucket,
                         local_allowed=not self.require_identity)
        elif not candidate.snapshot_jpeg:
            raise NothingToVerify("empty snapshot and no clip: nothing to verify")
        site = self.registry.site_of(identity.thing_name) if self.registry is not None else None
        if site is None:
            if self.require_identity:
                raise ThingNotRegistered(f"thing {identity.thing_name!r} is not registered (no site_id)")
            site = candidate.site_id  # embedded default without a registry file: the gateway's own site
        if site != candidate.site_id:
            log.warning("body's site_id replaced by the registry's",
                        extra={"event_id": candidate.event_id, "claimed": candidate.site_id, "site": site})
        return candidate.model_copy(update={"site_id": site})

    def _handle(self, candidate: Candidate, received_at: float) -> Outcome:
        eid = candidate.event_id
        verifier_metrics.received(candidate)
        existing = self.events.get(eid)
        if existing is None and not self.events.claim_processing(eid, self._now(), self.processing_lease_s):
            existing = self.events.get(eid)  # the other delivery may have finished since our first look
            if existing is None:
                raise ProcessingInProgress(f"event {eid}: another delivery is verifying it; retry later")
        if existing is not None:
            log.info("duplicate delivery, returning the stored verdict", extra={"event_id": eid})
            verifier_metrics.duplicate(candidate)
            notified_at = self._finish_notification(existing, received_at, claimed=False)
            return Outcome(eid, existing.verdict(), "duplicate", received_at=received_at,
                           notified=notified_at is not None, notified_at=notified_at)
        try:
            return self._verify_and_store(candidate, received_at)
        finally:  # stored (the record answers redeliveries) or failed (a retry may verify): the claim is done
            try:
                self.events.release_processing(eid)
            except Exception:  # the lease expires anyway
                log.exception("could not release the processing claim", extra={"event_id": eid})

    def _verify_and_store(self, candidate: Candidate, received_at: float) -> Outcome:
        eid = candidate.event_id
        with tempfile.TemporaryDirectory(prefix="vigia-clip-") as tmp:
            clip_path = self.clips.fetch(candidate.clip, Path(tmp)) if candidate.clip else None
            verify_started = time.perf_counter()
            verdict = self.verify(candidate, clip_path)
            verifier_metrics.verified(candidate, verdict, (time.perf_counter() - verify_started) * 1000.0,
                                      clip_path is not None)
            if verdict.event_id != eid:
                raise RuntimeError(f"verifier returned a verdict for {verdict.event_id}, not {eid}")
            log.info("verdict %s (score %.3f)", verdict.decision, verdict.score, extra={"event_id": eid})
            clip_k, snap_k = self._store_media(candidate, verdict, clip_path)

        now = self._now()
        try:
            record = EventRecord.build(candidate, verdict, clip_key=clip_k, snapshot_key=snap_k,
                                       now=now, ttl_days=self.ttl_days)
        except ValueError as exc:  # a value the record refuses will be refused on every retry too
            raise MalformedMessage(f"event record refused: {exc}") from exc
        if verdict.decision == "confirmed":
            # The writer that creates the item holds the notification claim from the start.
            record = record.model_copy(update={"notify_claimed_at": now.timestamp()})
        created = self.events.put_if_absent(record)
        stored_at = self.clock()
        if not created:
            # Another delivery won the race: its item and its verdict stand, it notifies.
            winner = self.events.get(eid)
            log.info("event written concurrently by another delivery", extra={"event_id": eid})
            return Outcome(eid, winner.verdict() if winner else verdict, "duplicate",
                           received_at=received_at, stored_at=stored_at)
        log.info("event stored", extra={"event_id": eid, "decision": verdict.decision})
        notified_at = self._finish_notification(record, received_at, claimed=True)
        return Outcome(eid, verdict, "processed", created=True, notified=notified_at is not None,
                       received_at=received_at, stored_at=stored_at, notified_at=notified_at)

    def _store_media(self, candidate: Candidate, verdict: Verdict, clip_path: Path | None
                     ) -> tuple[str | None, str | None]:
        model_version = verdict.models[0].version if verdict.models else candidate.model.version
        tags = media_tags(candidate.camera_id, verdict.decision, model_version)
        try:  # keys follow the contract's id rules, so this only fails on a value no retry can change
            snap_k = snapshot_key(candidate.camera_id, candidate.event_id, candidate.started_at)
            clip_k = None
            if clip_path is not None:
                ext = clip_path.suffix.lstrip(".") or "bin"
                if ext == "jpg" and candidate.snapshot_jpeg:  # a still "clip" must not overwrite the snapshot
                    ext = "jpeg"
                clip_k = clip_key(candidate.camera_id, candidate.event_id, candidate.started_at, ext)
        except ValueError as exc:
            raise MalformedMessage(f"storage refuses the candidate's keys: {exc}") from exc
        if not candidate.snapshot_jpeg:
            snap_k = None
        else:
            self.objects.put_bytes(snap_k, candidate.snapshot_jpeg, "image/jpeg", tags)
        if clip_path is not None and clip_k is not None:
            content_type = candidate.clip.content_type if candidate.clip else "application/octet-stream"
            self.objects.put_file(clip_k, clip_path, content_type, tags)
        return clip_k, snap_k

    def _finish_notification(self, record: EventRecord, received_at: float, *, claimed: bool) -> float | None:
        """Publish once per event. The claim (conditional update) keeps concurrent deliveries from both
        publishing; `notified` is set only after a successful publish, so a crash in between leaves the
        alert to a redelivery once the claim's lease has run out (at-least-once in that narrow window)."""
        eid = record.event_id
        if record.decision != "confirmed" or record.notified:
            return None
        now = self._now()
        claim_ts = record.notify_claimed_at if claimed else now.timestamp()
        if not claimed and not self.events.claim_notification(eid, now, self.notify_lease_s):
            raise NotificationPending(f"event {eid}: another delivery is notifying; retry after the lease")
        verdict = record.verdict()
        notification = Notification(
            event_id=eid, camera_id=record.camera_id, gateway_id=record.gateway_id, site_id=record.site_id,
            decision=record.decision, score=record.score, started_at=record.started_at,
            clip_key=record.clip_key, snapshot_key=record.snapshot_key, reasons=verdict.reasons,
            received_at=datetime.fromtimestamp(received_at, UTC), verified_at=verdict.verified_at,
            notified_at=now,
        )
        try:
            message_id = self.notifier.publish(notification)
        except Exception:
            log.warning("publish failed; releasing the claim for a retry", extra={"event_id": eid})
            try:
                if claim_ts is not None:
                    self.events.release_notification(eid, claim_ts)
            except Exception:  # the lease expires anyway
                log.exception("could not release the notification claim", extra={"event_id": eid})
            raise
        self.events.mark_notified(eid, self._now(), message_id)
        log.info("notified", extra={"event_id": eid, "message_id": message_id})
        verifier_metrics.notified(record)
        return self.clock()
