"""The in-progress claim on the embedded store (SQLite): a concurrent redelivery never verifies again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.events.sqlite import SqliteEventStore
from cloud.pipeline import Outcome
from cloud.ports import ProcessingInProgress
from cloud.runtime.wiring import build_pipeline
from cloud.settings import CloudSettings
from contracts import new_event_id
from tests.unit.cloud_factories import make_candidate
from tests.unit.idempotency_harness import GatedVerifier, deliver_twice_at_once

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> CloudSettings:
    return CloudSettings(store="local", data_dir=tmp_path / "data", processing_lease_s=60)


def notifications(settings: CloudSettings) -> list[dict]:
    path = settings.data_dir / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_claim_is_exclusive_until_released_or_expired(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.sqlite3")
    eid = new_event_id()
    assert store.claim_processing(eid, T0, lease_s=60) is True
    assert store.claim_processing(eid, T0 + timedelta(seconds=59), lease_s=60) is False  # live claim
    assert store.claim_processing(eid, T0 + timedelta(seconds=61), lease_s=60) is True  # crashed: taken over
    assert store.claim_processing(eid, T0 + timedelta(seconds=62), lease_s=60) is False  # the new owner's
    store.release_processing(eid)
    assert store.claim_processing(eid, T0 + timedelta(seconds=63), lease_s=60) is True
    assert store.claim_processing(new_event_id(), T0, lease_s=60) is True  # claims are per event


def test_two_concurrent_deliveries_verify_once(settings: CloudSettings) -> None:
    verifier = GatedVerifier()
    pipeline = build_pipeline(settings, verifier)
    candidate = make_candidate(score=0.9)
    body = candidate.model_dump_json()

    results = deliver_twice_at_once(pipeline, body, verifier)

    assert verifier.calls == 1
    [processed] = [r for r in results if isinstance(r, Outcome)]
    [deferred] = [r for r in results if isinstance(r, Exception)]
    assert processed.status == "processed" and processed.verdict.decision == "confirmed"
    assert isinstance(deferred, ProcessingInProgress) and "another delivery is verifying" in str(deferred)
    # the deferred delivery comes back (SQS redelivery) and is answered from the store
    again = pipeline.handle(body)
    assert again.status == "duplicate" and again.verdict == processed.verdict
    assert verifier.calls == 1
    assert [r.event_id for r in pipeline.events.query()] == [candidate.event_id]
    assert [n["message"]["event_id"] for n in notifications(settings)] == [candidate.event_id]


def test_live_claim_defers_without_verifying(settings: CloudSettings) -> None:
    verifier = GatedVerifier()
    verifier.other_finished.set()
    pipeline = build_pipeline(settings, verifier)
    candidate = make_candidate(score=0.9)
    now = datetime.now(UTC)
    assert pipeline.events.claim_processing(candidate.event_id, now, lease_s=60)  # another worker, alive

    with pytest.raises(ProcessingInProgress):
        pipeline.handle(candidate.model_dump_json())
    assert verifier.calls == 0 and pipeline.events.get(candidate.event_id) is None
    # the deferred delivery did not release the other worker's claim
    assert pipeline.events.claim_processing(candidate.event_id, now + timedelta(seconds=1), lease_s=60) is False


def test_crashed_claim_is_taken_over(settings: CloudSettings) -> None:
    verifier = GatedVerifier()
    verifier.other_finished.set()
    pipeline = build_pipeline(settings, verifier)
    candidate = make_candidate(score=0.9)
    crashed_at = datetime.now(UTC) - timedelta(seconds=61)  # older than the 60 s lease
    assert pipeline.events.claim_processing(candidate.event_id, crashed_at, lease_s=60)

    outcome = pipeline.handle(candidate.model_dump_json())

    assert outcome.status == "processed" and verifier.calls == 1
    assert [n["message"]["event_id"] for n in notifications(settings)] == [candidate.event_id]


def test_failed_verification_releases_the_claim(settings: CloudSettings) -> None:
    calls: list[str] = []

    def failing(candidate, clip_path):
        calls.append(candidate.event_id)
        raise RuntimeError("inference backend hiccup")

    pipeline = build_pipeline(settings, failing)
    candidate = make_candidate(score=0.9)
    for _ in range(2):  # the retry verifies again at once: it does not wait out the lease
        with pytest.raises(RuntimeError, match="hiccup"):
            pipeline.handle(candidate.model_dump_json())
    assert calls == [candidate.event_id] * 2
