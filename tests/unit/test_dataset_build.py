"""The dataset builder with a fake miner: labeling rule, balance, manifest hash, events, end to end on tmp files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from models.learned.samples import MinedRegion
from models.training.build import BuildSettings, Candidate, DatasetBuilder, balance, boxes_at, read_boxes_csv
from models.training.dataset_format import SampleRow, read_samples, sample_id, samples_bytes, write_samples
from models.training.labeled_events import read_feedback, read_review_manifest
from models.training.labeling import FrameTruth, clip_frame_truth, hardness, label_regions
from models.training.split import check_folds

PERSON = [100.0, 100.0, 200.0, 300.0]


def region(box, score: float = 0.5) -> MinedRegion:
    return MinedRegion(tuple(box), {"ssd_a_score": score, "ssd_b_score": score / 2, "area": 0.1})


# -- labeling rule ----------------------------------------------------------------------------------------
def test_iou_thresholds_person_negative_ambiguous() -> None:
    regions = [region(PERSON), region([110, 110, 200, 300]),  # IoU 0.81 -> person
               region([150, 100, 250, 300]),  # IoU 0.33 -> ambiguous
               region([400, 400, 450, 480]),  # IoU 0 -> negative
               region([195, 100, 295, 300]),  # IoU 0.026 -> negative (< 0.1)
               region([150, 260, 190, 300])]  # IoU 0.08 but wholly inside the person (the legs): dropped
    out, dropped = label_regions(regions, FrameTruth("boxes", [PERSON]))
    assert [o.label for o in out] == ["person", "person", "negative", "negative"]
    assert all(o.label_source == "boxes" and o.weight == 1.0 for o in out)
    assert dropped["ambiguous IoU"] == 1 and dropped["part of a person"] == 1
    # Boxed clip frames: their ground truth may miss people, so low-IoU regions are not negatives by default.
    out, dropped = label_regions(regions, FrameTruth("boxes", [PERSON]), box_negatives=False)
    assert [o.label for o in out] == ["person", "person"]
    assert dropped["low IoU in a boxed clip frame (boxes may miss people)"] == 2


def test_person_free_items_give_negatives_and_ignored_frames_nothing() -> None:
    regions = [region([0, 0, 10, 10]), region([20, 20, 40, 40])]
    out, _ = label_regions(regions, FrameTruth("no_person"))
    assert [(o.label, o.label_source) for o in out] == [("negative", "negative_item")] * 2
    out, dropped = label_regions(regions, FrameTruth("ignore", reason="partial body"))
    assert out == [] and dropped["partial body"] == 2


def test_interval_frames_keep_only_the_top_region_as_a_weak_person() -> None:
    regions = [region([0, 0, 10, 10], 0.3), region([20, 20, 40, 40], 0.9), region([50, 50, 60, 60], 0.6)]
    out, dropped = label_regions(regions, FrameTruth("person_no_boxes"))
    assert len(out) == 1 and out[0].region is regions[1]
    assert (out[0].label, out[0].label_source, out[0].weight) == ("person", "interval", 0.5)
    assert dropped["person without boxes, not the top region"] == 2
    out, _ = label_regions(regions, FrameTruth("person_no_boxes"), interval_positives="none")
    assert out == []


def test_hardness_is_the_highest_detector_score() -> None:
    assert hardness({"a_score": 0.2, "b_score": 0.7, "area": 5.0}) == 0.7
    assert hardness({"area": 5.0}) == 0.0


def test_clip_frame_truth_margins() -> None:
    intervals = [(10.0, 20.0)]

    def kind(t: float, partial=(), boxes=None) -> str:
        return clip_frame_truth(t, intervals, list(partial), 40.0, 0.5, boxes).kind

    assert kind(5.0) == "no_person"
    assert kind(9.6) == "ignore" and kind(10.3) == "ignore" and kind(20.4) == "ignore"
    assert kind(10.6) == "person_no_boxes" and kind(19.4) == "person_no_boxes"
    assert kind(20.6) == "no_person"
    assert kind(30.0, partial=[(29.0, 35.0)]) == "ignore"
    assert kind(28.6, partial=[(29.0, 35.0)]) == "ignore"  # the margin applies to partial bodies too
    assert kind(15.0, boxes=[PERSON]) == "boxes"
    assert kind(15.0, boxes=[]) == "ignore"  # boxes file without a row at this frame
    assert kind(5.0, boxes=[]) == "no_person"
    # An interval that spans the whole clip has no transitions: its first frame is a person frame.
    assert clip_frame_truth(0.0, [(0.0, 40.0)], [], 40.0, 0.5, None).kind == "person_no_boxes"


def test_boxes_matched_by_time_stamp(tmp_path: Path) -> None:
    path = tmp_path / "c.boxes.csv"
    path.write_text("frame,time_s,track_id,x_min,y_min,x_max,y_max\n1,0.0,1,1,2,3,4\n2,0.1,1,5,6,7,8\n"
                    "2,0.1,2,9,9,19,19\n")
    times, boxes = read_boxes_csv(path)
    assert boxes_at(0.1, times, boxes, 0.05) == [[5, 6, 7, 8], [9, 9, 19, 19]]
    assert boxes_at(0.02, times, boxes, 0.05) == [[1, 2, 3, 4]]
    assert boxes_at(0.5, times, boxes, 0.05) == []
    path.write_text("frame,time_s\n1,x\n")
    with pytest.raises(ValueError, match="bad boxes row"):
        read_boxes_csv(path)


# -- balance ----------------------------------------------------------------------------------------------
def _cand(i: int, label: str, group: str, score: float) -> Candidate:
    row = SampleRow(id=f"{label}{i:04d}", label=label, label_source="boxes", weight=1.0, source="clips",
                    item=group, group=group, frame_w=10, frame_h=10, box=[0, 0, 1, 1],
                    features={"x_score": score}, crop=f"crops/{i}.png")
    return Candidate(row, score)


def test_balance_keeps_persons_ratio_hardest_first_and_caps_groups() -> None:
    persons = [_cand(i, "person", "clip:p", 0.9) for i in range(10)]
    long_clip = [_cand(100 + i, "negative", "clip:long", i / 1000) for i in range(500)]  # scores < 0.5
    others = [_cand(1000 + i, "negative", f"clip:o{i % 5}", 0.2 + i / 100) for i in range(40)]
    kept, report = balance(persons + long_clip + others, 2.0, 15, seed=0)
    negs = [c for c in kept if c.row.label == "negative"]
    assert sum(c.row.label == "person" for c in kept) == 10
    assert len(negs) == 20 == report["negatives_kept"]
    assert report["negatives_dropped_by_group_cap"]["clip:long"] == 485
    assert sum(c.row.group == "clip:long" for c in negs) <= 15
    # Hardest first: every kept negative scores at least as high as every dropped one (after the cap).
    dropped = [c for c in others if c not in negs]
    assert min(c.hardness for c in negs) >= max(c.hardness for c in dropped)
    again, _ = balance(list(reversed(persons + long_clip + others)), 2.0, 15, seed=0)
    assert sorted(c.row.id for c in again) == sorted(c.row.id for c in kept)


# -- manifest hash ----------------------------------------------------------------------------------------
def test_samples_hash_changes_with_a_sample_and_not_otherwise(tmp_path: Path) -> None:
    rows = [_cand(i, "negative", "clip:a", 0.1 * i).row for i in range(5)]
    h1 = write_samples(rows, tmp_path / "a.jsonl")
    h2 = write_samples(list(reversed(rows)), tmp_path / "b.jsonl")
    assert h1 == h2
    changed = [*rows[:2], rows[2].model_copy(update={"weight": 0.5}), *rows[3:]]
    assert write_samples(changed, tmp_path / "c.jsonl") != h1
    assert read_samples(tmp_path / "a.jsonl") == sorted(rows, key=lambda r: r.id)
    assert samples_bytes([]) == b""


def test_sample_id_is_stable_and_rounds_the_box() -> None:
    assert sample_id("clips", "v.avi", 1.5, [1.01, 2, 3, 4]) == sample_id("clips", "v.avi", 1.5, [1.04, 2, 3, 4])
    assert sample_id("clips", "v.avi", 1.5, [1, 2, 3, 4]) != sample_id("clips", "v.avi", 2.0, [1, 2, 3, 4])
    assert sample_id("images", "a.jpg", None, [1, 2, 3, 4]) != sample_id("images", "b.jpg", None, [1, 2, 3, 4])


# -- events -----------------------------------------------------------------------------------------------
def _snapshot(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))


def test_feedback_and_review_files_are_parsed(tmp_path: Path) -> None:
    _snapshot(tmp_path / "cam1/ev1.jpg")
    feedback = tmp_path / "events.json"
    feedback.write_text(json.dumps([
        {"event_id": "ev1", "camera_id": "cam1", "label": "not-person", "snapshot_key": "cam1/ev1.jpg",
         "clip_key": None},
        {"event_id": "ev2", "camera_id": "cam1", "label": "unsure", "snapshot_key": "cam1/ev1.jpg"},
        {"event_id": "ev3", "camera_id": "cam1", "label": None},
        {"event_id": "ev4", "camera_id": "cam1", "label": "person", "snapshot_key": "cam1/missing.jpg"},
    ]))
    events, skipped = read_feedback(feedback)
    assert [(e.event_id, e.label, e.camera) for e in events] == [("ev1", "not-person", "cam1")]
    assert skipped == {"unlabeled": 1, "unsure": 1, "no media": 1}

    review_root = tmp_path / "review"
    _snapshot(review_root / "run-1/snapshots/ev9.jpg")
    (review_root / "run-1/manifest.json").write_text(json.dumps({"run_id": "run-1", "events": [
        {"event_id": "ev9", "camera_id": "cam2", "label": "person", "review_snapshot_key": "run-1/snapshots/ev9.jpg",
         "review_clip_key": None}]}))
    events, _ = read_review_manifest(review_root / "run-1/manifest.json")
    assert events[0].label == "person" and events[0].snapshot == review_root / "run-1/snapshots/ev9.jpg"
    with open(review_root / "run-1/manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["event_id", "camera_id", "label", "review_snapshot_key", "review_clip_key"])
        w.writeheader()
        w.writerow({"event_id": "ev9", "camera_id": "cam2", "label": "not_person",
                    "review_snapshot_key": "run-1/snapshots/ev9.jpg", "review_clip_key": ""})
    events, _ = read_review_manifest(review_root / "run-1/manifest.csv")
    assert events[0].label == "not-person"
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a review manifest"):
        read_review_manifest(tmp_path / "bad.json")


# -- end to end -------------------------------------------------------------------------------------------
ASTRONAUT_BOX = [140.0, 20.0, 470.0, 512.0]  # the astronaut, head to the bottom edge


def fake_miner(frame: np.ndarray) -> list[MinedRegion]:
    """Fixed proposals: the astronaut's box where the frame is the astronaut's size, plus background regions."""
    h, w = frame.shape[:2]
    regions = [region([5, 5, 60, 80], 0.4), region([w - 70, h - 90, w - 5, h - 5], 0.2)]
    if (h, w) == (512, 512):
        regions.append(region([145, 25, 465, 505], 0.95))  # IoU > 0.9 with the astronaut
        regions.append(region([330, 20, 470, 512], 0.6))  # part of the person (IoU 0.42): ambiguous
    return regions


def _labels_folder(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images/astronaut.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "images/chelsea.png"), cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    (root / "labels.json").write_text(json.dumps({"format": "test", "images": [
        {"file": "images/astronaut.png", "person_present": True, "person_boxes_xyxy": [ASTRONAUT_BOX],
         "source": "skimage astronaut"},
        {"file": "images/chelsea.png", "person_present": False, "person_boxes_xyxy": [], "camera": "sofa"},
    ]}))


def test_build_end_to_end(tmp_path: Path) -> None:
    labels, out = tmp_path / "labels", tmp_path / "out"
    _labels_folder(labels)
    _snapshot(tmp_path / "fb/cam9/ev1.jpg")
    (tmp_path / "fb/events.json").write_text(json.dumps([
        {"event_id": "ev1", "camera_id": "cam9", "label": "not-person", "snapshot_key": "cam9/ev1.jpg"}]))
    builder = DatasetBuilder(out, fake_miner, BuildSettings(negative_ratio=3.0, folds=2))
    builder.add_labels_root(labels)
    events, skipped = read_feedback(tmp_path / "fb/events.json")
    builder.add_events(events, "feedback", tmp_path / "fb/events.json", skipped)
    report = builder.finish()

    rows = read_samples(out / "samples.jsonl")
    persons = [r for r in rows if r.label == "person"]
    assert len(persons) == 1 and persons[0].item == "images/astronaut.png" and persons[0].label_source == "boxes"
    negatives = [r for r in rows if r.label == "negative"]
    assert len(negatives) == 3  # 6 mined (2 astronaut + 2 chelsea + 2 feedback), ratio 3 x 1 person
    assert {r.label_source for r in negatives} <= {"boxes", "negative_item", "feedback"}
    assert report["regions_dropped_by_labeling"]["ambiguous IoU"] == 1
    assert report["balance"]["negatives_dropped_by_ratio"] == 3
    assert {r.group for r in rows if r.item == "images/chelsea.png"} <= {"camera:sofa"}
    check_folds(rows)
    for r in rows:
        crop = cv2.imread(str(out / r.crop))
        assert crop is not None and crop.shape == (128, 128, 3)
    assert len(list((out / "crops").iterdir())) == len(rows)  # dropped candidates leave no crop behind
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["counts"]["total"] == len(rows)
    assert {i["kind"] for i in manifest["inputs"]} == {"images_labels", "feedback"}
    assert "IoU >= 0.5" in manifest["labeling_rule"] and "camera" in manifest["split_rule"]

    # The same inputs give the same training data, bit for bit.
    again = DatasetBuilder(tmp_path / "out2", fake_miner, BuildSettings(negative_ratio=3.0, folds=2))
    again.add_labels_root(labels)
    again.add_events(events, "feedback", tmp_path / "fb/events.json", skipped)
    assert again.finish()["samples_sha256"] == report["samples_sha256"]

    from models.training.contact_sheet import sheet_size, write_dataset_sheet

    sheet = cv2.imread(str(write_dataset_sheet(out, rows=4, augmented=3)))
    assert sheet.shape[:2] == sheet_size(4, 3)[::-1]
