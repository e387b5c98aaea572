"""The pipeline on the embedded adapters (folder + SQLite + JSONL), with a deterministic stand-in verifier."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.ports import ClipNotFound, NotificationPending
from cloud.runtime.wiring import build_pipeline
from cloud.settings import CloudSettings
from contracts import ClipRef
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate, write_avi


@pytest.fixture
def settings(tmp_path: Path) -> CloudSettings:
    write_avi(tmp_path / "incoming" / "cam-front" / "ev.avi")
    return CloudSettings(store="local", data_dir=tmp_path / "data", clip_root=tmp_path / "incoming")


@pytest.fixture
def pipeline(settings: CloudSettings):
    return build_pipeline(settings, decide_by_candidate_score)


def notifications(settings: CloudSettings) -> list[dict]:
    path = settings.data_dir / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def dead_letters(settings: CloudSettings) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((settings.data_dir / "dead-letter").glob("*.json"))]


CLIP = ClipRef(kind="local", uri="cam-front/ev.avi")


def test_confirmed_is_stored_and_notified_once(pipeline, settings: CloudSettings) -> None:
    candidate = make_candidate(score=0.9, clip=CLIP)
    body = candidate.model_dump_json()
    verdict = pipeline.process(body)
    assert verdict.decision == "confirmed" and verdict.frames_examined == 6
    again = pipeline.handle(body)
    assert again.status == "duplicate" and again.verdict == verdict  # the stored verdict, not re-verified
    [note] = notifications(settings)
    assert note["attributes"] == {"camera_id": "cam-front", "gateway_id": "gw-1", "verdict": "confirmed",
                                  "site_id": "site-1"}
    assert note["message"]["event_id"] == candidate.event_id
    record = pipeline.events.get(candidate.event_id)
    assert record.notified and record.notification_id == note["message_id"]
    objects = settings.data_dir / "objects"
    assert (objects / record.clip_key).is_file() and (objects / record.snapshot_key).is_file()
    assert record.clip_key == f"clips/cam-front/2026/11/28/{candidate.event_id}.avi"
    assert pipeline.objects.get_tags(record.clip_key) == {
        "camera": "cam-front", "verdict": "confirmed", "model_version": "0.0.1"}


@pytest.mark.parametrize("score,decision", [(0.2, "rejected"), (0.5, "uncertain")])
def test_only_confirmed_notifies(pipeline, settings: CloudSettings, score: float, decision: str) -> None:
    verdict = pipeline.process(make_candidate(score=score).model_dump_json())
    assert verdict.decision == decision
    assert notifications(settings) == []
    record = pipeline.events.get(verdict.event_id)
    assert record.clip_key is None and record.snapshot_key  # no clip sent: the snapshot is still kept


@pytest.mark.parametrize("body,reason", [
    (b"\xff\xfe not utf8", "malformed"),
    ("{not json", "malformed"),
    ("[1, 2]", "malformed"),
    ('{"schema_version": 2, "event_id": "x"}', "malformed"),
    ("__VALID_BUT_BAD_FIELD__", "malformed"),
    ("__KVS_CLIP__", "clip_outside_gateway"),  # not the gateway's own stream kvs://vigia-gw-1-cam-front
    ("__ESCAPING_CLIP__", "clip_outside_gateway"),
])
def test_bad_messages_are_dead_lettered_with_reason(pipeline, settings: CloudSettings, body, reason) -> None:
    if body == "__VALID_BUT_BAD_FIELD__":
        data = json.loads(make_candidate().model_dump_json())
        data["score"] = 7
        body = json.dumps(data)
    elif body == "__KVS_CLIP__":
        body = make_candidate(clip=ClipRef(kind="kvs", uri="kvs://door")).model_dump_json()
    elif body == "__ESCAPING_CLIP__":
        body = make_candidate(clip=ClipRef(kind="local", uri="../../etc/passwd")).model_dump_json()
    outcome = pipeline.handle(body)
    assert outcome.status == "dead_lettered" and outcome.verdict is None
    [letter] = dead_letters(settings)
    assert letter["reason"] == reason and letter["error"]
    expected_raw = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    assert letter["raw_body"] == expected_raw
    assert notifications(settings) == []


def test_missing_clip_is_raised_for_retry(pipeline, settings: CloudSettings) -> None:
    candidate = make_candidate(clip=ClipRef(kind="local", uri="cam-front/not-yet.avi"))
    with pytest.raises(ClipNotFound):
        pipeline.handle(candidate.model_dump_json())
    assert pipeline.events.get(candidate.event_id) is None and dead_letters(settings) == []


def test_publish_failure_then_redelivery_notifies_once(pipeline, settings: CloudSettings) -> None:
    real = pipeline.notifier.publish
    calls = {"n": 0}

    def flaky(notification):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("notifier down")
        return real(notification)

    pipeline.notifier.publish = flaky
    body = make_candidate(score=0.9).model_dump_json()
    with pytest.raises(ConnectionError):
        pipeline.handle(body)
    outcome = pipeline.handle(body)  # claim was released: no need to wait for the lease
    assert outcome.status == "duplicate" and outcome.notified
    assert len(notifications(settings)) == 1
    assert pipeline.handle(body).notified is False and len(notifications(settings)) == 1


def test_crash_between_put_and_publish(settings: CloudSettings) -> None:
    """A delivery that crashed after the put holds a claim; a redelivery waits out the lease, then notifies."""
    clock = {"t": datetime(2026, 11, 28, 12, tzinfo=UTC).timestamp()}
    pipeline = build_pipeline(settings, decide_by_candidate_score)
    pipeline.clock = lambda: clock["t"]

    class Crash(BaseException):  # like the process dying: nothing after publish runs, no claim release
        pass

    def crash(_):
        raise Crash

    real = pipeline.notifier.publish
    pipeline.notifier.publish = crash
    body = make_candidate(score=0.95).model_dump_json()
    with pytest.raises(Crash):
        pipeline.handle(body)
    pipeline.notifier.publish = real
    clock["t"] += 5
    with pytest.raises(NotificationPending):
        pipeline.handle(body)
    clock["t"] += settings.notify_lease_s
    assert pipeline.handle(body).notified is True
    assert pipeline.handle(body).notified is False
    assert len(notifications(settings)) == 1


def test_verdict_for_another_event_is_an_error(settings: CloudSettings) -> None:
    other = make_candidate()
    pipeline = build_pipeline(settings, lambda c, p: decide_by_candidate_score(other, p))
    with pytest.raises(RuntimeError, match="verdict for"):
        pipeline.handle(make_candidate().model_dump_json())
