"""Threshold selection from labeled scores: the bound, the rule, the refusals, the store and the shadow."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.events.record import EventRecord
from cloud.events.sqlite import SqliteEventStore
from cloud.feedback.recording import record_feedback
from cloud.tuning import (
    LabeledScore,
    TuningSettings,
    clopper_pearson_lower,
    cross_validate,
    people_needed,
    point_at,
    select_threshold,
)
from cloud.tuning.apply import threshold_patch
from cloud.tuning.from_events import current_threshold, labeled_cameras, labeled_scores
from cloud.tuning.threshold import assign_folds
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate
from vigia.cli import main


def spread(n: int, low: float, high: float, person: bool, **kw) -> list[LabeledScore]:
    return [LabeledScore(score=round(low + (high - low) * i / max(n - 1, 1), 4), person=person, **kw)
            for i in range(n)]


# --- the bound ------------------------------------------------------------------------------------------
def test_clopper_pearson_matches_the_exact_binomial_bound():
    # 8 of 10: the 5 % quantile of Beta(8, 3), 0.49310 (tables; scipy.stats.beta.ppf(0.05, 8, 3))
    assert clopper_pearson_lower(8, 10) == pytest.approx(0.493099, abs=1e-5)
    # all kept: closed form (1 - c)^(1/n); none kept: 0
    assert clopper_pearson_lower(30, 30) == pytest.approx(0.05 ** (1 / 30), abs=1e-12)
    assert clopper_pearson_lower(0, 30) == 0.0
    # by definition P(X ≥ k | n, p_L) = alpha: check the tail at the bound directly
    k, n = 97, 100
    p = clopper_pearson_lower(k, n)
    tail = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
    assert tail == pytest.approx(0.05, abs=1e-6)


def test_people_needed_is_where_a_clean_record_first_proves_the_target():
    n = people_needed(0.98, 0.95)
    assert n == 149
    assert clopper_pearson_lower(n, n) >= 0.98 > clopper_pearson_lower(n - 1, n - 1)


# --- the rule -------------------------------------------------------------------------------------------
def test_known_answer_removes_every_false_alert_and_no_person():
    # 200 people at 0.80..0.99, 50 false alerts at 0.50..0.70: the lowest threshold above every false alert is
    # 0.71 (0.70 itself still passes the one at 0.70), and it keeps all 200 people
    samples = spread(200, 0.80, 0.99, True, sent_threshold=0.5) + spread(50, 0.50, 0.70, False, sent_threshold=0.5)
    result = select_threshold(samples, current=0.5, camera_id="cam1")
    assert result.status == "recommended" and result.valid
    assert result.chosen == 0.71
    assert (result.before.false_alerts, result.after.false_alerts) == (50, 0)
    assert (result.before.people_missed, result.after.people_missed) == (0, 0)
    assert result.after.recall_lower == pytest.approx(0.05 ** (1 / 200))


def test_bound_refuses_a_threshold_whose_point_estimate_passes():
    # 300 people, 3 of them weak (0.55); false alerts at 0.60..0.80. Threshold 0.81 removes every false alert
    # and keeps 297/300 = 0.99 ≥ 0.98 by point estimate, but its 95 % lower bound is below 0.98.
    samples = (spread(297, 0.85, 0.99, True) + [LabeledScore(0.55, True)] * 3 + spread(40, 0.60, 0.80, False))
    naive = point_at(samples, 0.81, 0.95)
    assert naive.recall == pytest.approx(0.99) and naive.false_alerts == 0
    assert naive.recall_lower == pytest.approx(clopper_pearson_lower(297, 300)) and naive.recall_lower < 0.98
    result = select_threshold(samples, current=0.5)
    assert result.status == "unchanged" and result.chosen == 0.5 and not result.valid
    assert result.after.false_alerts == 40 and result.after.people_missed == 0


def test_too_few_labeled_people_changes_nothing():
    samples = spread(29, 0.8, 0.95, True) + spread(40, 0.5, 0.6, False)
    result = select_threshold(samples, current=0.5)
    assert result.status == "too-few-labels" and result.chosen is None and not result.valid
    assert "29 labeled people, fewer than the 30 needed" in result.message
    assert result.before.false_alerts == 40  # the before figures are still reported


def test_enough_people_but_not_enough_to_prove_the_target():
    samples = spread(60, 0.8, 0.95, True) + spread(40, 0.5, 0.6, False)
    result = select_threshold(samples, current=0.5)
    assert result.status == "no-threshold-meets-target" and result.chosen is None
    assert "at least 149 labeled people" in result.message
    # a lower target the same data can prove: now it acts
    lenient = select_threshold(samples, current=0.5, settings=TuningSettings(target=0.9))
    assert lenient.status == "recommended" and lenient.chosen == 0.61


def test_thresholds_below_what_the_events_were_sent_under_are_not_judged():
    # some events came through while the camera was at 0.6: below 0.6 the data is incomplete
    samples = [*spread(200, 0.8, 0.99, True, sent_threshold=0.5), LabeledScore(0.65, False, sent_threshold=0.6)]
    result = select_threshold(samples, current=0.5)
    assert result.floor == 0.6
    assert min(p.threshold for p in result.curve if p.threshold != 0.5) == 0.6
    assert any("below 0.60" in n for n in result.notes)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="--target"):
        TuningSettings(target=1.0)
    with pytest.raises(ValueError, match="--min-people"):
        TuningSettings(min_people=0)
    with pytest.raises(ValueError, match="outside"):
        select_threshold([], current=1.5)


# --- held-out evaluation ----------------------------------------------------------------------------------
def test_cross_validation_keeps_groups_together_and_counts_every_unit_once():
    samples = []
    for clip in range(10):
        samples += spread(30, 0.8, 0.99, True, group=f"clip{clip}") + spread(5, 0.5, 0.7, False, group=f"clip{clip}")
    folds = assign_folds(samples, 5)
    assert sorted(folds.values()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    cv = cross_validate(samples, 0.5, TuningSettings(), folds=5, floor=0.5)
    assert cv.folds == 5 and cv.groups == 10
    assert cv.before == {"people": 300, "people_missed": 0, "false_alerts": 50}
    # each fold trains on 240 people (bound 0.9876 with none missed) and removes every false alert it holds
    assert cv.thresholds == [0.71] * 5
    assert cv.after == {"people": 300, "people_missed": 0, "false_alerts": 0}


# --- from the event store ------------------------------------------------------------------------------------
def _store_with_labels(path: Path, people: int, not_people: int, camera: str = "cam1") -> SqliteEventStore:
    store = SqliteEventStore(path)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i, (score, label) in enumerate([(0.80 + 0.19 * i / max(people - 1, 1), "person") for i in range(people)]
                                       + [(0.50 + 0.2 * i / max(not_people - 1, 1), "not-person")
                                          for i in range(not_people)]):
        candidate = make_candidate(camera_id=camera, score=round(score, 4), started_at=start + timedelta(minutes=i))
        verdict = decide_by_candidate_score(candidate, None)
        assert store.put_if_absent(EventRecord.build(candidate, verdict, clip_key=None, snapshot_key=None,
                                                     now=start, ttl_days=3650))
        record_feedback(store, candidate.event_id, label, by="reviewer")
    return store


def test_labeled_scores_come_from_the_store(tmp_path):
    store = _store_with_labels(tmp_path / "events.sqlite3", people=40, not_people=10)
    samples = labeled_scores(store, "cam1")
    assert sum(s.person for s in samples) == 40 and sum(not s.person for s in samples) == 10
    assert {s.sent_threshold for s in samples} == {0.5}
    # the stand-in verifier confirms from 0.7 on: the false alerts that reached the customer are those
    assert sum(s.alerted for s in samples if not s.person) == sum(1 for s in samples if not s.person
                                                                  and s.score >= 0.7)
    assert labeled_cameras(store) == ["cam1"]
    assert current_threshold(store, "cam1") == (0.5, "gw-1")
    with pytest.raises(LookupError, match="no events"):
        current_threshold(store, "cam9")


def test_cli_reports_before_after_and_refuses_too_few(tmp_path, capsys):
    data = tmp_path / "data"
    _store_with_labels(data / "cloud" / "events.sqlite3", people=12, not_people=8).close()
    assert main(["tune", "--camera", "cam1", "--data-dir", str(data), "--plot", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "cam1: too-few-labels: 12 labeled people, fewer than the 30 needed" in out
    assert "before" in out and "recall is among the people the gateway sent" in out
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --apply with nothing valid: exit 1, nothing sent (no backend is even opened)
    assert main(["tune", "--camera", "cam1", "--data-dir", str(data), "--apply", "--json"]) == 1
    (entry,) = json.loads(capsys.readouterr().out)["cameras"]
    assert entry["result"]["status"] == "too-few-labels" and entry["applied"] is None


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["tune", "--camera", "cam1", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no event store" in capsys.readouterr().err
    data = tmp_path / "data"
    _store_with_labels(data / "cloud" / "events.sqlite3", people=1, not_people=1).close()
    assert main(["tune", "--camera", "ghost", "--data-dir", str(data)]) == 2
    assert "camera 'ghost' has no events" in capsys.readouterr().err


# --- --apply through a real shadow backend (moto server's iot-data over HTTP) -----------------------------
def test_patch_keeps_detect_threshold_at_or_below_the_threshold():
    doc = {"state": {"desired": {"cameras": {"cam1": {"detect_threshold": 0.45, "threshold": 0.5}}}}}
    assert threshold_patch(doc, "cam1", 0.4) == {"threshold": 0.4, "detect_threshold": 0.4}
    assert threshold_patch(doc, "cam1", 0.7) == {"threshold": 0.7}
    assert threshold_patch(None, "cam1", 0.2) == {"threshold": 0.2, "detect_threshold": 0.2}  # default 0.3


@pytest.fixture
def moto_iot(monkeypatch):
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    boto3.client("iot").create_thing(thingName="gw-1")
    yield
    server.stop()


@pytest.mark.integration
def test_apply_writes_the_recommendation_through_the_shadow(tmp_path, moto_iot, capsys):
    from cloud.config_admin import IotDataBackend

    data = tmp_path / "data"
    _store_with_labels(data / "cloud" / "events.sqlite3", people=40, not_people=10).close()
    # 40 people, none lost, prove 0.9 (bound 0.928), not 0.98: a lenient target keeps the store small
    assert main(["tune", "--camera", "cam1", "--data-dir", str(data), "--target", "0.9", "--apply", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["cameras"]
    assert entry["result"]["status"] == "recommended" and entry["result"]["chosen"] == 0.71
    assert entry["applied"]["thing"] == "gw-1"  # the events' gateway
    doc = IotDataBackend().get("gw-1", "vigia-config")
    assert doc["state"]["desired"] == {"cameras": {"cam1": {"threshold": 0.71}}}
