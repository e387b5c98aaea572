"""The sampler in AWS mode against moto server over HTTP: the score-band index on DynamoDB, server-side
copies into the review bucket, the manifests, and the Lambda handler invoked with a scheduled event."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from cloud_moto import Aws

import cloud.runtime.sampler_handler as sampler_handler
from cloud.events.dynamodb import DynamoEventStore
from cloud.sampler import S3ReviewStore, SamplingPolicy, Window, list_review_sets, read_review_set, run_sampler
from cloud.storage.s3 import S3ObjectStore
from tests.unit.sampler_factories import DAY, store_event
from vigia.cli import main

pytestmark = pytest.mark.integration

REVIEW = "vigia-review"
SCHEDULED = {"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "Scheduled Event",
             "source": "aws.events", "account": "123456789012", "time": "2026-11-29T00:00:00Z",
             "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/vigia-dev-sampler"],
             "detail": {}}


@pytest.fixture
def stores(aws: Aws, monkeypatch: pytest.MonkeyPatch):
    aws.s3.create_bucket(Bucket=REVIEW)
    for name, value in {"VIGIA_STORE": "aws", "VIGIA_TABLE": "vigia-events", "VIGIA_BUCKET": "vigia-media",
                        "VIGIA_REVIEW_BUCKET": REVIEW, "VIGIA_SAMPLE_RANDOM_SHARE": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sampler_handler, "_built", None)  # a fresh container per test
    return DynamoEventStore("vigia-events"), S3ObjectStore("vigia-media")


def review_keys(aws: Aws) -> list[str]:
    return sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=REVIEW).get("Contents", []))


def test_scheduled_run_copies_media_and_writes_manifests(aws: Aws, stores, tmp_path: Path) -> None:
    events, objects = stores
    near = store_event(events, objects, tmp_path, started_at=DAY + timedelta(hours=7), decision="uncertain",
                       verifier_score=0.47, edge_score=0.7)
    disputed = store_event(events, objects, tmp_path, camera_id="cam-back", started_at=DAY + timedelta(hours=20),
                           decision="rejected", verifier_score=0.04, edge_score=0.93, with_clip=False)
    store_event(events, objects, tmp_path, started_at=DAY + timedelta(hours=9), decision="confirmed",
                verifier_score=0.96, edge_score=0.96)  # sure and agreed: not picked
    store_event(events, objects, tmp_path, started_at=DAY - timedelta(hours=2), decision="uncertain",
                verifier_score=0.5)  # the day before: another score-band partition, outside the window

    out = sampler_handler.handler(SCHEDULED, None)

    run_id = f"20261128T000000Z_20261129T000000Z_{SamplingPolicy(random_share=0).digest()}"
    assert out["status"] == "written" and out["run_id"] == run_id and out["considered"] == 3
    assert out["review_root"] == f"s3://{REVIEW}/"
    n, d = near.event_id, disputed.event_id
    assert review_keys(aws) == sorted([
        f"{run_id}/manifest.json", f"{run_id}/manifest.csv",
        f"{run_id}/cam-front/{n}/clip.avi", f"{run_id}/cam-front/{n}/snapshot.jpg",
        f"{run_id}/cam-back/{d}/snapshot.jpg",
    ])
    copy = aws.s3.get_object(Bucket=REVIEW, Key=f"{run_id}/cam-front/{n}/clip.avi")["Body"].read()
    assert copy == objects.get_bytes(near.clip_key)
    tags = aws.s3.get_object_tagging(Bucket=REVIEW, Key=f"{run_id}/cam-back/{d}/snapshot.jpg")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"review_set": run_id, "camera": "cam-back",
                                                    "verdict": "rejected"}

    manifest = json.loads(aws.s3.get_object(Bucket=REVIEW, Key=f"{run_id}/manifest.json")["Body"].read())
    assert [(e["event_id"], e["reasons"], e["review_clip_key"]) for e in manifest["events"]] == [
        (n, ["near_verifier_threshold"], f"{run_id}/cam-front/{n}/clip.avi"),
        (d, ["disagreement_gateway_sure_verifier_rejected"], None),
    ]
    assert manifest["events"][1]["source_snapshot_key"] == disputed.snapshot_key
    rows = list(csv.DictReader(io.StringIO(
        aws.s3.get_object(Bucket=REVIEW, Key=f"{run_id}/manifest.csv")["Body"].read().decode())))
    assert [(r["event_id"], r["camera_id"], r["verifier_decision"], r["edge_score"]) for r in rows] == [
        (n, "cam-front", "uncertain", "0.7"), (d, "cam-back", "rejected", "0.93")]

    # the console's view of the bucket
    [listed] = list_review_sets(f"s3://{REVIEW}")
    assert (listed["name"], listed["events"]) == (run_id, 2)
    assert read_review_set(f"s3://{REVIEW}", run_id) == manifest

    again = sampler_handler.handler(SCHEDULED, None)  # an EventBridge retry: the same set, rewritten
    assert again["run_id"] == run_id and len(review_keys(aws)) == 5


def test_near_threshold_comes_from_the_score_band_index(aws: Aws, stores, tmp_path: Path) -> None:
    events, objects = stores
    inside = [store_event(events, objects, tmp_path, started_at=DAY + timedelta(hours=h), decision="uncertain",
                          verifier_score=s, edge_score=0.75, with_clip=False)
              for h, s in ((1, 0.4), (2, 0.5), (3, 0.6))]
    store_event(events, objects, tmp_path, started_at=DAY + timedelta(hours=4), decision="rejected",
                verifier_score=0.39, edge_score=0.75, with_clip=False)
    assert {r.event_id for r in events.by_score_band("2026-11-28", 0.4, 0.6)} == {r.event_id for r in inside}
    # a day larger than the scan limit (its lowest 3 scores are read) still yields every near-threshold
    # event: the band has its own index query
    policy = SamplingPolicy(random_share=0, scan_limit=3)
    result = run_sampler(events, objects, S3ReviewStore(REVIEW), Window(DAY, DAY + timedelta(days=1)), policy)
    manifest = read_review_set(f"s3://{REVIEW}", result.run_id)
    assert [e["event_id"] for e in manifest["events"]] == [r.event_id for r in inside]


def test_customer_flag_on_dynamodb_is_picked(aws: Aws, stores, tmp_path: Path) -> None:
    from cloud.feedback.model import FeedbackEntry

    events, objects = stores
    record = store_event(events, objects, tmp_path, decision="confirmed", verifier_score=0.97, edge_score=0.97)
    events.set_feedback(record.event_id, FeedbackEntry(label="not-person", by="customer-7",
                                                       at=DAY + timedelta(hours=15), source="api"))
    out = sampler_handler.handler(SCHEDULED, None)
    [entry] = read_review_set(f"s3://{REVIEW}", out["run_id"])["events"]
    assert (entry["event_id"], entry["reasons"], entry["label"]) == (
        record.event_id, ["flagged_by_customer"], "not-person")


def test_empty_window_writes_nothing_and_the_command_says_so(aws: Aws, stores, tmp_path: Path, capsys) -> None:
    events, objects = stores
    store_event(events, objects, tmp_path, started_at=DAY - timedelta(days=3), decision="uncertain",
                verifier_score=0.5)
    out = sampler_handler.handler(SCHEDULED, None)
    assert out["status"] == "empty" and out["run_id"] is None
    assert out["message"] == "no events between 2026-11-28T00:00:00.000000Z and 2026-11-29T00:00:00.000000Z"
    assert review_keys(aws) == []

    assert main(["sample", "--since", "2026-11-25", "--until", "2026-11-26", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["picked"], result["review_root"]) == (1, f"s3://{REVIEW}/")
    with pytest.raises(SystemExit) as exc:  # the embedded data dir means nothing in AWS mode
        main(["sample", "--data-dir", str(tmp_path)])
    assert exc.value.code == 2 and "--data-dir is for the embedded default" in capsys.readouterr().err
