"""The sampler on the embedded default: a real SQLite event store and media folder, events built from real
Candidate/Verdict contracts, review sets written to a folder and read back as the console reads them."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.events.sqlite import SqliteEventStore
from cloud.runtime.sampler_handler import run_scheduled
from cloud.sampler import (
    FolderReviewStore,
    SamplerSettings,
    SamplingPolicy,
    UnknownReviewSet,
    Window,
    build_sampler,
    list_review_sets,
    read_review_object,
    read_review_set,
    run_sampler,
)
from cloud.sampler.manifest import CSV_COLUMNS
from cloud.storage.local import FolderObjectStore
from tests.unit.sampler_factories import DAY, store_event
from vigia.cli import main

NO_RANDOM = SamplingPolicy(random_share=0.0)
WINDOW = Window(DAY, DAY + timedelta(days=1))


@pytest.fixture
def cloud_dir(tmp_path: Path) -> Path:
    return tmp_path / "demo" / "cloud"


@pytest.fixture
def events(cloud_dir: Path) -> SqliteEventStore:
    store = SqliteEventStore(cloud_dir / "events.sqlite3")
    yield store
    store.close()


@pytest.fixture
def objects(cloud_dir: Path) -> FolderObjectStore:
    return FolderObjectStore(cloud_dir / "objects")


@pytest.fixture
def review(cloud_dir: Path) -> FolderReviewStore:
    return FolderReviewStore(cloud_dir / "review")


@pytest.fixture
def add(events, objects, tmp_path: Path):
    def add(**kwargs):
        return store_event(events, objects, tmp_path / "clips", **kwargs)
    return add


def picked(result, review) -> dict[str, list[str]]:
    manifest = read_review_set(review, result.run_id)
    return {e["event_id"]: e["reasons"] for e in manifest["events"]}


def test_each_strategy_picks_its_events_with_every_reason(events, objects, review, add) -> None:
    at = DAY + timedelta(hours=9)
    near_verifier = add(started_at=at, decision="uncertain", verifier_score=0.45, edge_score=0.7)
    confirmed_near = add(started_at=at, decision="confirmed", verifier_score=0.55, edge_score=0.9)
    sure_rejected = add(started_at=at, decision="rejected", verifier_score=0.05, edge_score=0.92)
    near_edge = add(started_at=at, decision="rejected", verifier_score=0.1, edge_score=0.55)
    high_threshold = add(started_at=at, decision="rejected", verifier_score=0.1, edge_score=0.88, edge_threshold=0.85)
    add(started_at=at, decision="confirmed", verifier_score=0.95, edge_score=0.95)  # sure and agreed
    add(started_at=at, decision="rejected", verifier_score=0.02, edge_score=0.7)  # quiet reject
    add(started_at=DAY - timedelta(minutes=1), decision="uncertain", verifier_score=0.5)  # before the window

    result = run_sampler(events, objects, review, WINDOW, NO_RANDOM)

    assert result.considered == 7 and result.picked == 5 and result.capped == 0
    assert picked(result, review) == {
        near_verifier.event_id: ["near_verifier_threshold"],
        confirmed_near.event_id: ["disagreement_confirmed_near_bound", "near_verifier_threshold"],
        sure_rejected.event_id: ["disagreement_gateway_sure_verifier_rejected"],
        near_edge.event_id: ["near_edge_threshold"],
        # 0.88 is within 0.1 of this camera's threshold 0.85, and not 'sure' (that needs 0.85 + 0.1)
        high_threshold.event_id: ["near_edge_threshold"],
    }
    assert result.by_reason == {"disagreement_confirmed_near_bound": 1,
                                "disagreement_gateway_sure_verifier_rejected": 1,
                                "near_edge_threshold": 2, "near_verifier_threshold": 2}


def test_band_edges_and_window_bounds(events, objects, review, add) -> None:
    inside = add(started_at=DAY, decision="rejected", verifier_score=0.4, edge_score=0.65)  # exactly 0.1 away
    add(started_at=DAY + timedelta(hours=1), decision="rejected", verifier_score=0.39, edge_score=0.65)
    add(started_at=DAY + timedelta(days=1), decision="uncertain", verifier_score=0.5)  # `until` is excluded
    result = run_sampler(events, objects, review, WINDOW, NO_RANDOM)
    assert picked(result, review) == {inside.event_id: ["near_verifier_threshold"]}
    wider = run_sampler(events, objects, review, WINDOW, SamplingPolicy(random_share=0.0, band=0.2))
    assert wider.picked == 2 and wider.run_id != result.run_id  # another policy, another review set


def test_customer_flags_are_picked_first_even_from_before_the_window(events, objects, review, add) -> None:
    from cloud.feedback.model import FeedbackEntry

    quiet = add(decision="confirmed", verifier_score=0.95, edge_score=0.95)
    earlier = add(started_at=DAY - timedelta(days=2), decision="confirmed", verifier_score=0.93, edge_score=0.9)
    old_unflagged = add(started_at=DAY - timedelta(days=2), decision="uncertain", verifier_score=0.5)
    events.set_feedback(quiet.event_id, FeedbackEntry(label="not-person", by="customer-7",
                                                      at=DAY + timedelta(hours=12), source="api"))
    events.set_feedback(earlier.event_id, FeedbackEntry(label="person", by="reviewer",
                                                        at=DAY + timedelta(hours=13)))  # flagged inside the window
    result = run_sampler(events, objects, review, WINDOW, NO_RANDOM)
    manifest = read_review_set(review, result.run_id)
    assert {e["event_id"]: (e["reasons"], e["label"]) for e in manifest["events"]} == {
        quiet.event_id: (["flagged_by_customer"], "not-person"),
        earlier.event_id: (["flagged_by_customer"], "person"),
    }
    assert old_unflagged.event_id not in {e["event_id"] for e in manifest["events"]}


def test_per_camera_and_per_run_caps_keep_the_most_useful(events, objects, review, add) -> None:
    at = DAY + timedelta(hours=8)
    front_sure_rejected = add(started_at=at, decision="rejected", verifier_score=0.05, edge_score=0.95)
    front_closest = add(started_at=at, decision="uncertain", verifier_score=0.49)
    add(started_at=at, decision="uncertain", verifier_score=0.42)  # further from the threshold: capped
    back_closest = add(camera_id="cam-back", started_at=at, decision="uncertain", verifier_score=0.51)
    add(camera_id="cam-back", started_at=at, decision="uncertain", verifier_score=0.58)  # over the run cap
    add(camera_id="cam-back", started_at=at, decision="rejected", verifier_score=0.15, edge_score=0.58)

    policy = SamplingPolicy(random_share=0.0, per_camera=2, max_events=3)
    result = run_sampler(events, objects, review, WINDOW, policy)
    assert set(picked(result, review)) == {front_sure_rejected.event_id, front_closest.event_id,
                                           back_closest.event_id}
    assert result.capped == 3
    assert read_review_set(review, result.run_id)["counts"] == {
        "considered": 6, "picked": 3, "capped": 3,
        "by_reason": {"disagreement_gateway_sure_verifier_rejected": 1, "near_verifier_threshold": 2}}


def test_random_share_is_seeded_and_reproducible(events, objects, review, add) -> None:
    for i in range(200):  # sure, agreed events: only the random strategy picks any of them
        add(started_at=DAY + timedelta(minutes=5 * i), decision="confirmed", verifier_score=0.97,
            edge_score=0.97, with_clip=False)
    roomy = {"per_camera": 1000, "max_events": 1000}

    def random_picks(seed: int, share: float) -> set[str]:
        result = run_sampler(events, objects, review, WINDOW, SamplingPolicy(random_share=share, seed=seed, **roomy))
        if result.run_id is None:
            return set()
        reasons = picked(result, review)
        assert set(map(tuple, reasons.values())) == {("random",)}
        return set(reasons)

    first = random_picks(seed=1, share=0.3)
    assert random_picks(seed=1, share=0.3) == first  # the same seed picks the same events
    assert 40 <= len(first) <= 80  # 200 x 0.3 = 60; the seed fixes it, so this cannot flake
    assert random_picks(seed=2, share=0.3) != first
    assert random_picks(seed=1, share=0.6) > first  # a larger share keeps the smaller share's picks
    assert random_picks(seed=1, share=0.0) == set()
    assert len(random_picks(seed=1, share=1.0)) == 200


def test_rerun_rewrites_the_same_review_set(events, objects, review, add) -> None:
    add(decision="uncertain", verifier_score=0.45)
    add(decision="confirmed", verifier_score=0.52)
    first = run_sampler(events, objects, review, WINDOW, NO_RANDOM, now=DAY + timedelta(days=1, minutes=1))
    second = run_sampler(events, objects, review, WINDOW, NO_RANDOM, now=DAY + timedelta(days=1, minutes=9))
    assert first.run_id == second.run_id
    assert review.set_names() == [first.run_id]
    one, two = (read_review_set(review, first.run_id) for _ in range(2))
    assert one["events"] == two["events"]
    media = sorted(p.relative_to(review.root).as_posix() for p in review.root.rglob("*") if p.is_file())
    assert len(media) == 2 + 2 * 2  # two manifests, a clip and a snapshot per event: nothing twice


def test_manifest_content_exactly(events, objects, review, add, cloud_dir: Path) -> None:
    record = add(started_at=DAY + timedelta(hours=10, minutes=30), decision="uncertain", verifier_score=0.46,
                 edge_score=0.58, edge_threshold=0.5)
    now = datetime(2026, 11, 29, 0, 5, tzinfo=UTC)
    result = run_sampler(events, objects, review, WINDOW, NO_RANDOM, now=now)

    run_id = f"20261128T000000Z_20261129T000000Z_{NO_RANDOM.digest()}"
    eid = record.event_id
    assert result.run_id == run_id
    assert result.manifest_key == f"{run_id}/manifest.json" and result.csv_key == f"{run_id}/manifest.csv"
    entry = {
        "event_id": eid, "camera_id": "cam-front", "gateway_id": "gw-1", "site_id": "site-1",
        "started_at": "2026-11-28T10:30:00.000000Z", "ended_at": "2026-11-28T10:30:04.000000Z",
        "edge_score": 0.58, "edge_threshold": 0.5, "verifier_score": 0.46, "verifier_decision": "uncertain",
        "verifier_confirm_threshold": 0.5, "edge_model": "ssd-mobilenet@1.2.0",
        "verifier_models": ["ssd-mobilenet-v2-coco@2.1.0", "ssdlite-person@1.0.3"], "config_version": 7,
        "label": None,
        "reasons": ["near_verifier_threshold", "near_edge_threshold"],
        "why": ["verifier score 0.460 within 0.10 of 0.50",
                "gateway score 0.580 within 0.10 of the camera's threshold 0.50"],
        "source_clip_key": f"clips/cam-front/2026/11/28/{eid}.avi",
        "source_snapshot_key": f"clips/cam-front/2026/11/28/{eid}.jpg",
        "review_clip_key": f"{run_id}/cam-front/{eid}/clip.avi",
        "review_snapshot_key": f"{run_id}/cam-front/{eid}/snapshot.jpg",
        "missing": [],
    }
    assert read_review_set(review, run_id) == {
        "schema_version": 1, "run_id": run_id,
        "window": {"since": "2026-11-28T00:00:00.000000Z", "until": "2026-11-29T00:00:00.000000Z"},
        "generated_at": "2026-11-29T00:05:00.000000Z",
        "policy": NO_RANDOM.model_dump(),
        "counts": {"considered": 1, "picked": 1, "capped": 0,
                   "by_reason": {"near_edge_threshold": 1, "near_verifier_threshold": 1}},
        "events": [entry],
    }
    rows = list(csv.DictReader(io.StringIO(read_review_object(review, f"{run_id}/manifest.csv").decode())))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert rows == [{
        **{k: str(v) for k, v in entry.items() if k in CSV_COLUMNS},
        "site_id": "site-1", "label": "", "missing": "",
        "verifier_models": "ssd-mobilenet-v2-coco@2.1.0;ssdlite-person@1.0.3",
        "reasons": "near_verifier_threshold;near_edge_threshold",
        "why": "verifier score 0.460 within 0.10 of 0.50 | "
               "gateway score 0.580 within 0.10 of the camera's threshold 0.50",
    }]
    # the copies are the stored media, byte for byte
    assert read_review_object(review, entry["review_clip_key"]) == objects.get_bytes(record.clip_key)
    assert read_review_object(review, entry["review_snapshot_key"]) == objects.get_bytes(record.snapshot_key)
    assert (cloud_dir / "review" / run_id / "cam-front" / eid / "clip.avi").is_file()


def test_missing_media_is_listed_not_fatal(events, objects, review, add) -> None:
    gone = add(decision="uncertain", verifier_score=0.45)
    kept = add(decision="uncertain", verifier_score=0.55, with_clip=False)
    objects.path_for(gone.clip_key).unlink()
    result = run_sampler(events, objects, review, WINDOW, NO_RANDOM)
    by_id = {e["event_id"]: e for e in read_review_set(review, result.run_id)["events"]}
    assert (by_id[gone.event_id]["missing"], by_id[gone.event_id]["review_clip_key"]) == (["clip"], None)
    assert by_id[gone.event_id]["review_snapshot_key"].endswith("/snapshot.jpg")
    assert (by_id[kept.event_id]["missing"], by_id[kept.event_id]["source_clip_key"]) == ([], None)
    assert result.missing_media == 1


def test_empty_window_writes_nothing(events, objects, review, add) -> None:
    add(started_at=DAY - timedelta(hours=1), decision="uncertain", verifier_score=0.5)
    result = run_sampler(events, objects, review, WINDOW, NO_RANDOM)
    assert result.message == "no events between 2026-11-28T00:00:00.000000Z and 2026-11-29T00:00:00.000000Z"
    assert (result.run_id, result.considered, result.picked) == (None, 0, 0)
    assert not review.root.exists()
    add(decision="confirmed", verifier_score=0.97, edge_score=0.97)  # an event no strategy picks
    quiet = run_sampler(events, objects, review, WINDOW, NO_RANDOM)
    assert quiet.run_id is None and quiet.message.startswith("1 event(s) between ") and not review.root.exists()


def test_window_across_days_reads_each_day_partition(events, objects, review, add) -> None:
    late = add(started_at=DAY - timedelta(minutes=30), decision="uncertain", verifier_score=0.45)
    early = add(started_at=DAY + timedelta(minutes=30), decision="uncertain", verifier_score=0.55)
    window = Window(DAY - timedelta(hours=6), DAY + timedelta(hours=6))
    assert window.days() == ["2026-11-27", "2026-11-28"]
    result = run_sampler(events, objects, review, window, NO_RANDOM)
    assert set(picked(result, review)) == {late.event_id, early.event_id}


def test_review_sets_listed_newest_first_and_read_back(events, objects, review, add) -> None:
    add(decision="uncertain", verifier_score=0.45)
    add(started_at=DAY + timedelta(days=1, hours=2), decision="uncertain", verifier_score=0.55)
    first = run_sampler(events, objects, review, WINDOW, NO_RANDOM)
    second = run_sampler(events, objects, review, Window(DAY + timedelta(days=1), DAY + timedelta(days=2)),
                         NO_RANDOM)
    (review.root / "half-written").mkdir()  # no manifest.json yet: not listed
    listed = list_review_sets(review.root)
    assert [s["name"] for s in listed] == [second.run_id, first.run_id]
    assert listed[1] == {"name": first.run_id, "run_id": first.run_id,
                         "since": "2026-11-28T00:00:00.000000Z", "until": "2026-11-29T00:00:00.000000Z",
                         "generated_at": listed[1]["generated_at"], "events": 1,
                         "by_reason": {"near_verifier_threshold": 1}}
    assert read_review_set(str(review.root), second.run_id)["run_id"] == second.run_id
    with pytest.raises(UnknownReviewSet, match="no review set 'half-written'"):
        read_review_set(review.root, "half-written")
    for bad in ("../events", "a/b", ""):
        with pytest.raises(ValueError, match="is not valid"):
            read_review_set(review.root, bad)
    assert list_review_sets(review.root / "nowhere") == []


def test_policy_and_window_refuse_bad_values() -> None:
    for bad in ({"band": 0.0}, {"band": 0.6}, {"per_camera": 0}, {"max_events": 0}, {"random_share": 1.5},
                {"seed": -1}):
        with pytest.raises(ValidationError):
            SamplingPolicy(**bad)
    with pytest.raises(ValueError, match="the window is empty"):
        Window(DAY, DAY)
    with pytest.raises(ValueError, match="longer than 366 days"):
        Window(DAY, DAY + timedelta(days=367))


# -- the command ---------------------------------------------------------------------------------------
def test_vigia_sample_on_the_demo_data_dir(add, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("VIGIA_STORE", raising=False)
    record = add(decision="confirmed", verifier_score=0.52, edge_score=0.9)
    data_dir = tmp_path / "demo"
    argv = ["sample", "--data-dir", str(data_dir), "--since", "2026-11-28", "--until", "2026-11-29T00:00:00Z",
            "--random-share", "0"]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["picked"] == 1 and result["review_root"] == str((data_dir / "cloud" / "review").resolve())
    manifest = read_review_set(data_dir / "cloud" / "review", result["run_id"])
    assert [e["event_id"] for e in manifest["events"]] == [record.event_id]

    assert main([*argv, "--band", "0.01"]) == 0
    assert capsys.readouterr().out == (  # 0.52 is outside a 0.01 band around 0.5: nothing picked
        "1 event(s) between 2026-11-28T00:00:00.000000Z and 2026-11-29T00:00:00.000000Z; "
        "none matched a sampling strategy\n")

    assert main(["sample", "--data-dir", str(data_dir), "--since", "2026-11-20", "--until", "2026-11-21"]) == 0
    assert capsys.readouterr().out == (
        "no events between 2026-11-20T00:00:00.000000Z and 2026-11-21T00:00:00.000000Z "
        f"(newest event in the store started {record.started_at})\n")
    assert [s["run_id"] for s in list_review_sets(data_dir / "cloud" / "review")] == [result["run_id"]]


@pytest.mark.parametrize("args, message", [
    (["--band", "0.7"], "outside (0, 0.5]"),
    (["--band", "abc"], "is not a float"),
    (["--per-camera", "0"], "outside [1, 10000]"),
    (["--random-share", "2"], "outside [0, 1]"),
    (["--since", "yesterday"], "is not an ISO 8601 time"),
    (["--since", "2026-11-29", "--until", "2026-11-28"], "the window is empty"),
])
def test_vigia_sample_bad_arguments_exit_2(args, message, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--data-dir", str(tmp_path), *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_vigia_sample_without_an_event_store_exits_2(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("VIGIA_STORE", raising=False)
    assert main(["sample", "--data-dir", str(tmp_path / "nothing-here")]) == 2
    assert "no event store at" in capsys.readouterr().err
    assert not (tmp_path / "nothing-here").exists()  # nothing created


# -- the scheduled handler on the embedded stores ------------------------------------------------------
def test_scheduled_event_time_ends_the_window(add, cloud_dir: Path) -> None:
    record = add(started_at=DAY + timedelta(hours=23), decision="uncertain", verifier_score=0.5)
    add(started_at=DAY + timedelta(hours=1), decision="uncertain", verifier_score=0.5)  # outside 6 h
    settings = SamplerSettings(store="local", data_dir=cloud_dir, sample_window_hours=6, sample_random_share=0)
    scheduled = {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "123456789012", "time": "2026-11-29T00:00:00Z",
                 "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/sampler"],
                 "detail": {}}
    out = run_scheduled(scheduled, settings, *build_sampler(settings))
    assert out["status"] == "written" and out["since"] == "2026-11-28T18:00:00.000000Z"
    manifest = read_review_set(settings.review_root, out["run_id"])
    assert [e["event_id"] for e in manifest["events"]] == [record.event_id]
    for bad in ({**scheduled, "time": "soon"}, {**scheduled, "time": "2026-11-29T00:00:00"},
                {k: v for k, v in scheduled.items() if k != "time"}):
        result = run_scheduled(bad, settings, *build_sampler(settings))
        assert result["status"] == "error"
