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


def test_report_plot_is_written(tmp_path) -> None:
    from models.evaluation.plot import write_plot

    clip = {"file": "videos/a.avi", "intervals_hit": 1, "intervals_total": 1, "false_events": 0,
            "events": [{"start_s": 0, "end_s": 1, "alert": True}, {"start_s": 5, "end_s": 6, "alert": False}]}
    part = {"images": {"recall": 0.5, "hits": 1, "false_alarms": 0, "n_person": 2, "threshold": 0.5},
            "clips": {"per_clip": [clip]}}
    report = {"stage": "system", "baseline": part, "system": part,
              "sweep": {"images": pr_curve([0.9, 0.2], [True, False], [0.1, 0.5, 0.9])}}
    write_plot(report, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
