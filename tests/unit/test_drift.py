"""Drift: PSI and KS against hand computation, identical windows stay quiet, shifted ones are flagged."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from cloud.drift import (
    DriftSettings,
    compare_alert_rate,
    compare_series,
    ks_pvalue,
    ks_statistic,
    parse_duration,
    proportions,
    psi,
    run_drift,
)
from cloud.events.record import EventRecord
from cloud.events.sqlite import SqliteEventStore
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate
from vigia.cli import main

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_psi_and_ks_by_hand():
    # reference: half in bin [0.5, 0.6), half in [0.7, 0.8); recent: a quarter and three quarters
    reference = [0.55] * 50 + [0.75] * 50
    recent = [0.55] * 25 + [0.75] * 75
    assert proportions(reference)[5] == 0.5 and proportions(recent)[7] == 0.75
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)  # 0.2747
    assert psi(reference, recent) == pytest.approx(expected, abs=1e-12)
    # the empirical CDFs differ most between 0.55 and 0.75: 0.5 against 0.25
    assert ks_statistic(reference, recent) == pytest.approx(0.25)
    assert ks_statistic([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]) == 0.0
    assert ks_statistic([0.1, 0.2], [0.8, 0.9]) == 1.0
    # an empty bin on one side only is floored, not infinite: 0.5·ln(0.5/1e-4)·2 for a full swap of halves
    swap = psi([0.15] * 10, [0.95] * 10)
    assert swap == pytest.approx(2 * (1 - 1e-4) * math.log(1 / 1e-4))


def test_ks_pvalue_at_the_textbook_critical_value():
    # Kolmogorov: P(sqrt(n) D > 1.358) ≈ 0.05 for large samples; 1.628 ≈ 0.01
    n = 1_000_000
    en = math.sqrt(n * n / (2 * n))
    assert ks_pvalue(1.358 / en, n, n) == pytest.approx(0.05, abs=0.002)
    assert ks_pvalue(1.628 / en, n, n) == pytest.approx(0.01, abs=0.001)
    assert ks_pvalue(0.0, 10, 10) == 1.0


def test_identical_windows_are_not_flagged_and_a_shift_is():
    settings = DriftSettings()
    scores = [0.5 + 0.45 * i / 99 for i in range(100)]
    same = compare_series("edge_score", scores, list(reversed(scores)), settings)
    assert (same.psi, same.ks, same.flagged) == (0.0, 0.0, False)
    shifted = compare_series("edge_score", scores, [min(s + 0.2, 1.0) for s in scores], settings)
    assert shifted.flagged and shifted.psi > 0.2 and shifted.ks_pvalue < 1e-6
    few = compare_series("edge_score", scores[:10], [0.99] * 10, settings)
    assert few.psi is None and not few.flagged and "fewer than 30" in few.note


def test_alert_rate_needs_both_a_large_ratio_and_a_surprising_count():
    settings = DriftSettings(recent=timedelta(days=7), reference=timedelta(days=28))
    steady = compare_alert_rate(reference_alerts=56, recent_alerts=14, settings=settings)  # 2 a day both
    assert (steady.reference_per_day, steady.recent_per_day, steady.ratio, steady.flagged) == (2.0, 2.0, 1.0, False)
    surge = compare_alert_rate(56, 70, settings)  # 10 a day against 2: expected 14, sd 3.7
    assert surge.ratio == 5.0 and surge.flagged
    small = compare_alert_rate(4, 3, settings)  # 3 alerts against 1 expected: a ratio of 3 but no news
    assert small.ratio == 3.0 and not small.flagged


def test_durations_parse_or_fail_clearly():
    assert parse_duration("7d") == timedelta(days=7) and parse_duration("36h") == timedelta(hours=36)
    for bad in ("7", "d", "-3d", "7w", ""):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def _put(store: SqliteEventStore, camera: str, score: float, at: datetime) -> None:
    candidate = make_candidate(camera_id=camera, score=score, started_at=at)
    store.put_if_absent(EventRecord.build(candidate, decide_by_candidate_score(candidate, None), clip_key=None,
                                          snapshot_key=None, now=at, ttl_days=3650))


def test_run_drift_over_the_store_flags_the_camera_that_moved(tmp_path):
    store = SqliteEventStore(tmp_path / "events.sqlite3")
    for i in range(40):
        score = round(0.5 + 0.45 * i / 39, 4)
        for camera in ("steady", "moved"):
            _put(store, camera, score, NOW - timedelta(days=10, hours=i))  # reference window
        _put(store, "steady", score, NOW - timedelta(days=1, hours=i % 24, minutes=i))  # recent window
        _put(store, "moved", round(min(score + 0.3, 0.99), 4), NOW - timedelta(days=1, hours=i % 24, minutes=i))
    # equal window lengths and counts: the steady camera's alert rate is the same in both
    report = run_drift(store, now=NOW, settings=DriftSettings(reference=timedelta(days=7), min_events=30))
    by_camera = {c["camera_id"]: c for c in report["cameras"]}
    assert report["flagged"] == ["moved"]
    steady = {s["series"]: s for s in by_camera["steady"]["series"]}
    assert steady["edge_score"]["psi"] == 0.0 and steady["edge_score"]["recent_n"] == 40
    moved = {s["series"]: s for s in by_camera["moved"]["series"]}
    assert moved["edge_score"]["flagged"] and moved["verifier_score"]["flagged"]
    assert any(r.startswith("edge_score: PSI") for r in by_camera["moved"]["reasons"])
    assert by_camera["steady"]["alert_rate"]["ratio"] == 1.0


@pytest.fixture
def metrics_off():
    from cloud import metrics

    yield
    metrics.configure("off")  # the CLI configured the process's metrics destination: leave none behind


def test_drift_cli_writes_metrics_and_json(tmp_path, capsys, metrics_off):
    data = tmp_path / "data"
    store = SqliteEventStore(data / "cloud" / "events.sqlite3")
    now = datetime.now(UTC)
    for i in range(30):
        _put(store, "cam1", 0.6, now - timedelta(days=10, hours=i))
        _put(store, "cam1", 0.95, now - timedelta(hours=i + 1))
    store.close()
    assert main(["drift", "--data-dir", str(data), "--json", "--out", str(tmp_path / "drift.json")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["flagged"] == ["cam1"] and json.loads((tmp_path / "drift.json").read_text()) == report
    lines = [json.loads(x) for x in (data / "cloud" / "metrics" / "cloud.jsonl").read_text().splitlines()]
    flagged = [x for x in lines if "DriftFlagged" in x and x["camera_id"] == "cam1"]
    # powertools writes values as lists, the stdlib EMF writer as numbers: either way one line, value 1
    assert [x["DriftFlagged"] if isinstance(x["DriftFlagged"], list) else [x["DriftFlagged"]]
            for x in flagged] == [[1.0]]
    assert main(["drift", "--data-dir", str(data), "--recent", "7x"]) == 2
    assert "duration '7x'" in capsys.readouterr().err
