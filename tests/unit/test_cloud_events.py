"""SQLite event store semantics (the DynamoDB adapter passes the same checks against moto server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cloud.events import EventRecord
from cloud.events.dynamodb import table_definition
from cloud.events.sqlite import SqliteEventStore
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def record_for(score: float, minutes: int = 0, camera: str = "cam-front") -> EventRecord:
    candidate = make_candidate(score=score, camera_id=camera, started_at=T0 + timedelta(minutes=minutes))
    return EventRecord.build(candidate, decide_by_candidate_score(candidate, None), clip_key=None,
                             snapshot_key=None, now=T0, ttl_days=30)


@pytest.fixture
def store(tmp_path: Path) -> SqliteEventStore:
    return SqliteEventStore(tmp_path / "events.sqlite3")


def test_record_fields() -> None:
    record = record_for(0.8)
    assert record.score_bucket == "2026-11-28" and record.started_at == "2026-11-28T10:00:00.000000Z"
    assert record.expires_at == int((T0 + timedelta(days=30)).timestamp())
    assert record.edge_model == "ssd-mobilenet@1.2.0" and record.verifier_models == ["stand-in@0.0.1"]
    assert record.verdict().decision == "confirmed"


def test_insert_is_idempotent(store: SqliteEventStore) -> None:
    record = record_for(0.8)
    assert store.put_if_absent(record) is True
    assert store.put_if_absent(record.model_copy(update={"decision": "rejected"})) is False
    assert store.get(record.event_id).decision == "confirmed"
    assert store.get(make_candidate().event_id) is None


def test_queries_by_camera_time_and_score_band(store: SqliteEventStore) -> None:
    records = [record_for(s, m) for m, s in enumerate((0.2, 0.45, 0.55, 0.9))]
    records.append(record_for(0.5, 1, camera="cam-back"))
    for r in records:
        store.put_if_absent(r)
    got = store.by_camera("cam-front", T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    assert [r.score for r in got] == [0.45, 0.55]
    band = store.by_score_band("2026-11-28", 0.4, 0.6)
    assert sorted(r.score for r in band) == [0.45, 0.5, 0.55]
    assert store.by_score_band("2026-11-27", 0, 1) == []


def test_notification_claim_lease_release_and_mark(store: SqliteEventStore) -> None:
    record = record_for(0.9)
    store.put_if_absent(record)
    eid = record.event_id
    assert store.claim_notification(eid, T0, lease_s=30) is True
    assert store.claim_notification(eid, T0 + timedelta(seconds=10), lease_s=30) is False  # live claim
    assert store.claim_notification(eid, T0 + timedelta(seconds=31), lease_s=30) is True  # presumed crashed
    store.release_notification(eid, (T0 + timedelta(seconds=31)).timestamp())
    assert store.claim_notification(eid, T0 + timedelta(seconds=32), lease_s=30) is True
    store.mark_notified(eid, T0, "m-1")
    assert store.get(eid).notified is True and store.get(eid).notification_id == "m-1"
    assert store.claim_notification(eid, T0 + timedelta(hours=1), lease_s=30) is False


class _CfnLoader(yaml.SafeLoader):
    pass


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_template_table_matches_the_code_definition() -> None:
    template = yaml.load((Path(__file__).parents[2] / "cloud/infra/template.yaml").read_text(), _CfnLoader)
    props = template["Resources"]["EventsTable"]["Properties"]
    expected = table_definition("x")
    assert props["KeySchema"] == expected["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert props["GlobalSecondaryIndexes"] == expected["GlobalSecondaryIndexes"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
