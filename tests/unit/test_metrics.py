from __future__ import annotations

from models.evaluation.metrics import image_summary, merge_alarm_frames, pr_curve, score_clip


def test_intervals_hit_false_and_ignored_events() -> None:
    scored = score_clip([(0, 1), (5, 6), (25, 26)], persons=[(0.5, 2.0), (10, 12)], ignore=[(23, 30)])
    assert scored == {"intervals_hit": 1, "intervals_total": 2, "false_events": 1, "ignored_events": 1}


def test_alarm_frames_merge_into_events() -> None:
    assert merge_alarm_frames([0.0, 0.2, 0.4, 5.0, 9.0, 9.2], gap_s=3.0) == [(0.0, 0.4), (5.0, 5.0), (9.0, 9.2)]


def test_image_summary_and_pr_curve() -> None:
    s = image_summary({"a": True, "b": False, "c": True}, {"a": True, "b": True, "c": False})
    assert (s["hits"], s["false_alarms"], s["recall"], s["missed_files"]) == (1, 1, 0.5, ["b"])
    curve = pr_curve([0.9, 0.4, 0.6], [True, True, False], [0.5])
    assert curve[0]["recall"] == 0.5 and curve[0]["precision"] == 0.5
