"""The results path on S3 + DynamoDB + SNS (moto server over HTTP), as a customer would observe it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cloud_moto import Aws

from cloud.events.dynamodb import CAMERA_TIME_INDEX, SCORE_BAND_INDEX
from cloud.runtime.wiring import build_pipeline
from contracts import ClipRef
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate, write_avi

pytestmark = pytest.mark.integration


def upload_clip(aws: Aws, tmp_path: Path, name: str) -> ClipRef:
    path = write_avi(tmp_path / name)
    aws.s3.upload_file(str(path), "vigia-media", f"gateways/gw-1/clips/{name}")
    return ClipRef(kind="s3", uri=f"s3://vigia-media/gateways/gw-1/clips/{name}", size_bytes=path.stat().st_size)


def tags(aws: Aws, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in aws.s3.get_object_tagging(Bucket="vigia-media", Key=key)["TagSet"]}


def test_confirmed_event_end_to_end_once(aws: Aws, tmp_path: Path) -> None:
    pipeline = build_pipeline(aws.settings, decide_by_candidate_score)
    candidate = make_candidate(score=0.9, clip=upload_clip(aws, tmp_path, "a.avi"))
    body = aws.envelope(candidate)
    eid = candidate.event_id

    verdict = pipeline.process(body)
    assert verdict.decision == "confirmed" and verdict.frames_examined == 6  # the clip came from S3
    assert pipeline.process(body) == verdict  # redelivery: the stored verdict, nothing new

    # S3: clip and snapshot under the event id, tagged for lifecycle rules and cost allocation
    prefix = "clips/cam-front/2026/11/28/"
    keys = sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket="vigia-media", Prefix="clips/")["Contents"])
    assert keys == [f"{prefix}{eid}.avi", f"{prefix}{eid}.jpg"]
    for key in keys:
        assert tags(aws, key) == {"camera": "cam-front", "verdict": "confirmed", "model_version": "0.0.1"}
    assert aws.s3.get_object(Bucket="vigia-media", Key=keys[1])["Body"].read() == candidate.snapshot_jpeg

    # DynamoDB: exactly one item, with TTL and the notification recorded
    items = aws.dynamodb.scan(TableName="vigia-events")["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["event_id"]["S"] == eid and item["decision"]["S"] == "confirmed"
    assert item["score_bucket"]["S"] == "2026-11-28" and item["notified"]["BOOL"] is True
    assert int(item["expires_at"]["N"]) > datetime.now(UTC).timestamp() + 80 * 86400
    assert item["clip_key"]["S"] == keys[0] and item["edge_model"]["S"] == "ssd-mobilenet@1.2.0"
    ttl = aws.dynamodb.describe_time_to_live(TableName="vigia-events")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] == "ENABLED"

    # SNS → SQS: the customer receives exactly one alert, with filterable attributes
    [message] = aws.receive_all(aws.subscriber_url)
    alert = json.loads(message["Body"])
    assert alert["event_id"] == eid and alert["clip_key"] == keys[0] and alert["snapshot_key"] == keys[1]
    attrs = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attrs == {"camera_id": "cam-front", "site_id": "site-1", "verdict": "confirmed", "gateway_id": "gw-1"}


def test_only_confirmed_and_subscribed_cameras_alert(aws: Aws) -> None:
    pipeline = build_pipeline(aws.settings, decide_by_candidate_score)
    assert pipeline.process(aws.envelope(make_candidate(score=0.1))).decision == "rejected"
    assert pipeline.process(aws.envelope(make_candidate(score=0.5))).decision == "uncertain"
    other = make_candidate(score=0.9, camera_id="cam-back", site_id=None)
    assert pipeline.process(aws.envelope(other)).decision == "confirmed"
    assert aws.receive_all(aws.subscriber_url) == []  # cam-back is filtered out by the subscription
    assert pipeline.events.get(other.event_id).notified is True  # ... but it was published
    rejected_keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket="vigia-media")["Contents"]]
    assert len(rejected_keys) == 3  # snapshots only, no clips sent
    assert {tags(aws, k)["verdict"] for k in rejected_keys} == {"rejected", "uncertain", "confirmed"}


def test_both_indexes_are_queryable(aws: Aws) -> None:
    pipeline = build_pipeline(aws.settings, decide_by_candidate_score)
    t0 = datetime(2026, 11, 28, 9, tzinfo=UTC)
    for i, score in enumerate((0.2, 0.45, 0.55, 0.9)):
        pipeline.process(aws.envelope(make_candidate(score=score, started_at=t0 + timedelta(minutes=i))))
    pipeline.process(aws.envelope(make_candidate(score=0.5, camera_id="cam-back", started_at=t0)))
    pipeline.process(aws.envelope(make_candidate(score=0.5, started_at=t0 + timedelta(days=1))))

    events = pipeline.events
    by_cam = events.by_camera("cam-front", t0 + timedelta(minutes=1), t0 + timedelta(minutes=3))
    assert [r.score for r in by_cam] == [0.45, 0.55, 0.9]
    band = events.by_score_band("2026-11-28", 0.4, 0.6)
    assert sorted(r.score for r in band) == [0.45, 0.5, 0.55]
    assert len(events.by_score_band("2026-11-29", 0, 1)) == 1
    # and straight through the API, as the sampler's own code would
    resp = aws.dynamodb.query(
        TableName="vigia-events", IndexName=SCORE_BAND_INDEX,
        KeyConditionExpression="score_bucket = :b AND score BETWEEN :lo AND :hi",
        ExpressionAttributeValues={":b": {"S": "2026-11-28"}, ":lo": {"N": "0.4"}, ":hi": {"N": "0.6"}})
    assert resp["Count"] == 3
    resp = aws.dynamodb.query(
        TableName="vigia-events", IndexName=CAMERA_TIME_INDEX, KeyConditionExpression="camera_id = :c",
        ExpressionAttributeValues={":c": {"S": "cam-back"}})
    assert resp["Count"] == 1


def test_two_deliveries_racing_give_one_item_one_alert(aws: Aws) -> None:
    """Two workers verify the same candidate at once (possible only once a processing claim's lease has run out
    mid-verification; a negative lease makes every claim stale): the conditional put still picks one writer.
    The claim's own behaviour (a live claim defers the second delivery) is tested in test_idempotency_aws.py."""
    import threading

    barrier = threading.Barrier(2)

    def slow_verify(candidate, clip_path):
        barrier.wait(timeout=10)  # both have passed the "already stored?" check
        return decide_by_candidate_score(candidate, clip_path)

    body = aws.envelope(make_candidate(score=0.9))
    stale_leases = aws.settings.model_copy(update={"processing_lease_s": -60.0})
    pipelines = [build_pipeline(stale_leases, slow_verify) for _ in range(2)]
    outcomes = []
    threads = [threading.Thread(target=lambda p=p: outcomes.append(p.handle(body))) for p in pipelines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(o.status for o in outcomes) == ["duplicate", "processed"]
    assert aws.dynamodb.scan(TableName="vigia-events")["Count"] == 1
    assert len(aws.receive_all(aws.subscriber_url)) == 1


def test_missing_s3_clip_is_retried_not_dead_lettered(aws: Aws) -> None:
    from cloud.ports import ClipNotFound

    pipeline = build_pipeline(aws.settings, decide_by_candidate_score)
    candidate = make_candidate(clip=ClipRef(kind="s3", uri="s3://vigia-media/gateways/gw-1/clips/later.avi"))
    with pytest.raises(ClipNotFound):
        pipeline.handle(aws.envelope(candidate))
    assert aws.receive_all(aws.settings.dlq_url, wait_s=0) == []
