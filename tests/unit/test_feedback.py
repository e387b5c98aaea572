"""Feedback on the embedded default: labels stored on events (idempotent, bounded history), the query both
stores answer, and `not-person` on a confirmed event teaching the camera's false-positive memory."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from cloud.events.sqlite import SqliteEventStore
from cloud.feedback import FeedbackEntry, UnknownEvent, parse_label, record_feedback
from cloud.feedback.learning import artifact_key, current_key
from cloud.feedback.shadow_refs import LocalShadowBackend
from cloud.feedback.wiring import build_feedback, settings_for_data_dir
from cloud.settings import CloudSettings
from contracts import new_event_id
from contracts.topics import CONFIG_SHADOW_NAME
from models.fp_memory import FpMemory, FpMemoryStore
from tests.unit.feedback_helpers import POSTER_BOX, T0, scene, stand_in_cloud, store_event


@pytest.fixture
def settings(tmp_path: Path) -> CloudSettings:
    return CloudSettings(store="local", data_dir=tmp_path / "cloud")


@pytest.fixture
def service(settings: CloudSettings):
    stand_in_cloud(settings)  # creates the stores
    return build_feedback(settings)


def test_labels_parse_and_bad_ones_name_the_allowed_labels() -> None:
    assert parse_label("not-person") == "not-person" and parse_label("Not_Person") == "not-person"
    with pytest.raises(ValueError, match=r"label 'cat' is not one of person, not-person, unsure"):
        parse_label("cat")
    with pytest.raises(ValueError, match="at most 500 characters"):
        FeedbackEntry(label="person", by="ana", note="x" * 501)


def test_label_is_stored_with_who_and_when_and_is_idempotent(settings, service, pictures) -> None:
    cloud = stand_in_cloud(settings)
    eid = store_event(cloud, pictures["coffee"], score=0.5)  # uncertain
    first = service.record(eid, "unsure", by="ana", note="blurry")
    assert (first.label, first.decision) == ("unsure", "uncertain") and first.labeled_at.endswith("Z")
    (entry,) = first.feedback()
    assert (entry.label, entry.by, entry.note, entry.source) == ("unsure", "ana", "blurry", "cli")
    again = service.record(eid, "unsure", by="ana", note="blurry")
    assert again.feedback_json == first.feedback_json and again.labeled_at == first.labeled_at
    changed = service.record(eid, "person", by="bo", source="api")
    assert changed.label == "person" and [e.label for e in changed.feedback()] == ["unsure", "person"]
    assert service.events.get(eid).feedback_json == changed.feedback_json


def test_history_is_bounded_to_the_last_20(settings, service, pictures) -> None:
    eid = store_event(stand_in_cloud(settings), pictures["coffee"], score=0.5)
    for i in range(25):
        record = service.record(eid, ("person", "unsure")[i % 2], by=f"user{i}")
    history = record.feedback()
    assert len(history) == 20 and history[0].by == "user5" and history[-1].by == "user24"


def test_unknown_event_and_bad_label_are_clear_errors(service) -> None:
    with pytest.raises(UnknownEvent, match="no event '01"):
        service.record(new_event_id(), "person", by="ana")
    with pytest.raises(UnknownEvent, match="no event 'not-an-id'"):
        service.record("not-an-id", "person", by="ana")
    with pytest.raises(ValueError, match="is not one of person, not-person, unsure"):
        service.record(new_event_id(), "maybe", by="ana")


def test_query_filters_newest_first(settings, service, pictures) -> None:
    cloud = stand_in_cloud(settings)
    ids = {
        "a": store_event(cloud, pictures["coffee"], score=0.9, camera="porch", minutes=0),
        "b": store_event(cloud, pictures["coffee"], score=0.2, camera="porch", minutes=10),
        "c": store_event(cloud, pictures["coffee"], score=0.5, camera="yard", minutes=20),
        "d": store_event(cloud, pictures["coffee"], score=0.95, camera="yard", minutes=30),
    }
    service.record(ids["b"], "person", by="ana")
    events = service.events
    assert [r.event_id for r in events.query()] == [ids["d"], ids["c"], ids["b"], ids["a"]]
    assert [r.event_id for r in events.query(camera_id="porch")] == [ids["b"], ids["a"]]
    assert [r.event_id for r in events.query(decision="confirmed")] == [ids["d"], ids["a"]]
    assert [r.event_id for r in events.query(label="person")] == [ids["b"]]  # a labelled positive
    assert [r.event_id for r in events.query(since=T0 + timedelta(minutes=5),
                                             until=T0 + timedelta(minutes=25))] == [ids["c"], ids["b"]]
    assert [r.event_id for r in events.query(score_low=0.4, score_high=0.92)] == [ids["c"], ids["a"]]
    assert [r.event_id for r in events.query(limit=1)] == [ids["d"]]
    assert events.query(camera_id="porch", decision="uncertain") == []


def test_a_store_from_before_feedback_is_migrated(tmp_path: Path, pictures) -> None:
    settings = CloudSettings(store="local", data_dir=tmp_path)
    eid = store_event(stand_in_cloud(settings), pictures["coffee"], score=0.9)
    with sqlite3.connect(tmp_path / "events.sqlite3") as db:  # the schema as it was: no decision, no label
        db.execute("DROP INDEX events_label_time")
        db.execute("ALTER TABLE events DROP COLUMN label")
        db.execute("ALTER TABLE events DROP COLUMN decision")
    store = SqliteEventStore(tmp_path / "events.sqlite3")
    assert [r.event_id for r in store.query(decision="confirmed")] == [eid]
    assert record_feedback(store, eid, "unsure", by="ana").label == "unsure"
    assert [r.event_id for r in store.query(label="unsure")] == [eid]


def test_not_person_on_a_confirmed_event_teaches_the_memory_everywhere(settings, service, pictures) -> None:
    cloud = stand_in_cloud(settings)
    poster = store_event(cloud, pictures["astronaut"], score=0.9)  # a person picture on a wall: confirmed
    record = service.record(poster, "not-person", by="ana", note="that is a poster")
    assert record.decision == "confirmed" and record.label == "not-person"

    # 1. the artifact and the pointer in the object store
    pointer = json.loads((settings.data_dir / "objects" / current_key("porch")).read_text())
    artifact = settings.data_dir / "objects" / artifact_key("porch", 1)
    assert pointer["version"] == 1 and pointer["uri"] == artifact.as_uri()
    memory = FpMemory.from_document(json.loads(artifact.read_text()))
    assert memory.content_sha256() == pointer["sha256"]
    assert [e.source_event_id for e in memory.entries] == [poster]
    # 2. the verifier's copy: the same place and look matches, a cat at that place does not
    verifier_copy = FpMemoryStore(settings.memory_dir).get("porch")
    assert verifier_copy.version == 1
    assert verifier_copy.match(scene(pictures["astronaut"]), POSTER_BOX, 0.8) is not None
    assert verifier_copy.match(scene(pictures["chelsea"]), POSTER_BOX, 0.8) is None
    # 3. the gateway's desired config names it
    doc = LocalShadowBackend(settings.data_dir / "shadows.json").get("gw-1", CONFIG_SHADOW_NAME)
    assert doc["state"]["desired"]["cameras"]["porch"]["fp_memory"] == pointer

    # the same feedback again (or by someone else) adds nothing to the memory
    service.record(poster, "not-person", by="ana", note="that is a poster")
    service.record(poster, "not-person", by="bo")
    assert FpMemoryStore(settings.memory_dir).get("porch").version == 1
    assert json.loads((settings.data_dir / "objects" / current_key("porch")).read_text()) == pointer

    # a second false alert at another camera place: version 2, both entries
    other = store_event(cloud, pictures["camera"], score=0.8, minutes=5)
    service.record(other, "not-person", by="ana")
    assert [e.source_event_id for e in FpMemoryStore(settings.memory_dir).get("porch").entries] == [poster, other]
    assert json.loads((settings.data_dir / "objects" / current_key("porch")).read_text())["version"] == 2


def test_person_on_a_rejected_event_is_a_labelled_positive_not_a_memory(settings, service, pictures) -> None:
    eid = store_event(stand_in_cloud(settings), pictures["astronaut"], score=0.2)  # rejected
    assert service.record(eid, "person", by="ana").label == "person"
    assert [r.event_id for r in service.events.query(label="person")] == [eid]
    not_person_rejected = store_event(stand_in_cloud(settings), pictures["coffee"], score=0.1, minutes=3)
    service.record(not_person_rejected, "not-person", by="ana")  # nothing to unlearn: it never alerted
    assert not (settings.data_dir / "objects" / "fp-memory").exists()
    assert not (settings.data_dir / "shadows.json").exists()


def test_a_demo_data_dir_is_recognised(tmp_path: Path) -> None:
    (tmp_path / "vigia-data-dir.json").write_text("{}")
    assert settings_for_data_dir(tmp_path).data_dir == tmp_path / "cloud"
    assert settings_for_data_dir(tmp_path / "cloud").data_dir == tmp_path / "cloud"
