"""Scoring events against labelled intervals, and alerts against labelled images."""

from __future__ import annotations

from collections.abc import Sequence

Interval = tuple[float, float]


def overlaps(a: Interval, b: Interval) -> bool:
    return a[0] <= b[1] and a[1] >= b[0]


def score_clip(events: Sequence[Interval], persons: Sequence[Interval], ignore: Sequence[Interval] = ()) -> dict:
    """An interval is hit when an event overlaps it; a false event overlaps no person interval.

    Events overlapping only an `ignore` interval (a hand near the lens: part of a body) are neither.
    """
    hit = sum(1 for p in persons if any(overlaps(e, p) for e in events))
    false = [e for e in events if not any(overlaps(e, p) for p in persons) and not any(overlaps(e, i) for i in ignore)]
    ignored = [e for e in events if not any(overlaps(e, p) for p in persons) and any(overlaps(e, i) for i in ignore)]
    return {"intervals_hit": hit, "intervals_total": len(persons), "false_events": len(false),
            "ignored_events": len(ignored)}


def image_summary(alerts: dict[str, bool], truth: dict[str, bool]) -> dict:
    n_person = sum(1 for v in truth.values() if v)
    n_empty = len(truth) - n_person
    hits = sum(1 for k, v in truth.items() if v and alerts.get(k))
    false = sorted(k for k, v in truth.items() if not v and alerts.get(k))
    misses = sorted(k for k, v in truth.items() if v and not alerts.get(k))
    return {
        "recall": round(hits / n_person, 4) if n_person else 0.0,
        "false_alarm_rate": round(len(false) / n_empty, 4) if n_empty else 0.0,
        "n_person": n_person, "n_empty": n_empty, "hits": hits, "false_alarms": len(false),
        "false_alarm_files": false, "missed_files": misses,
    }


def merge_alarm_frames(times: Sequence[float], gap_s: float) -> list[Interval]:
    """Alarming frame times → events (frames closer than gap_s are one alert, as a cooldown would make them)."""
    events: list[list[float]] = []
    for t in sorted(times):
        if events and t - events[-1][1] <= gap_s:
            events[-1][1] = t
        else:
            events.append([t, t])
    return [(a, b) for a, b in events]


def pr_curve(scores: Sequence[float], labels: Sequence[bool], thresholds: Sequence[float]) -> list[dict]:
    out = []
    positives = sum(labels)
    negatives = len(labels) - positives
    for thr in thresholds:
        tp = sum(1 for s, y in zip(scores, labels, strict=True) if y and s >= thr)
        fp = sum(1 for s, y in zip(scores, labels, strict=True) if not y and s >= thr)
        out.append({"threshold": round(thr, 3), "recall": tp / positives if positives else 0.0,
                    "precision": tp / (tp + fp) if tp + fp else 1.0,
                    "false_alarm_rate": fp / negatives if negatives else 0.0})
    return out
