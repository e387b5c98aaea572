"""The stack's alarms and dashboard are present and wired: every alarm notifies the operators' topic, and
every Vigia metric they read (name and exact dimension set) is one the code really emits — the lines are
produced here by the cloud pipeline's metrics, the feedback path and the gateway's metrics."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from cloud import metrics
from cloud.cost.stack import TEMPLATE, load_template
from cloud.events.record import EventRecord
from cloud.events.sqlite import SqliteEventStore
from cloud.metrics import verifier as verifier_metrics
from cloud.metrics.summary import parse_doc
from contracts.telemetry import CameraStatus, Heartbeat
from edge_agent.metrics import EdgeMetrics
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate

SCHEMA = re.compile(r'SELECT\s+\w+\((\w+)\)\s+FROM\s+SCHEMA\(\s*\\?"Vigia\\?"\s*((?:,\s*\w+\s*)*)\)', re.I)
Series = tuple[str, frozenset[str]]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def emitted(tmp_path_factory) -> set[Series]:
    """(metric, dimension keys) of every line the code writes, driven through its real entry points."""
    root = tmp_path_factory.mktemp("emitted")
    metrics.configure("file", root / "cloud.jsonl")
    try:
        candidate = make_candidate(score=0.9)
        verdict = decide_by_candidate_score(candidate, None)
        verifier_metrics.received(candidate)
        verifier_metrics.verified(candidate, verdict, 120.0, True)
        verifier_metrics.duplicate(candidate)
        verifier_metrics.notified(candidate)
        verifier_metrics.dead_lettered("malformed")
        verifier_metrics.error()
        verifier_metrics.queue_age(3.0)
        from cloud.feedback import record_feedback

        store = SqliteEventStore(root / "events.sqlite3")
        store.put_if_absent(EventRecord.build(candidate, verdict, clip_key=None, snapshot_key=None,
                                              now=datetime.now(UTC), ttl_days=1))
        record_feedback(store, candidate.event_id, "person", by="test")
    finally:
        metrics.configure("off")
    edge = EdgeMetrics(root / "edge.jsonl", "gw-1", flush_s=3600)
    for name in ("FramesProcessed", "DetectorCalls", "ClipsProcessed", "Candidates"):
        edge.count(name, "cam1")
    edge.count("Suppressed", "cam1", rule="fp_memory")
    edge.count("Dropped", "cam1", reason="min_hits")
    edge.heartbeat(Heartbeat(gateway_id="gw-1", sent_at=datetime.now(UTC), uptime_s=1, outbox_pending=0,
                             sent_total=0, cameras={"cam1": CameraStatus(state="connected")}))
    series: set[Series] = set()
    for path in (root / "cloud.jsonl", root / "edge.jsonl"):
        for line in path.read_text().splitlines():
            doc = parse_doc(line)
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                for dim_set in directive["Dimensions"]:
                    for metric in directive["Metrics"]:
                        series.add((metric["Name"], frozenset(dim_set)))
    return series


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def vigia_series_of_alarm(props: dict[str, Any]) -> list[Series]:
    found: list[Series] = []
    if props.get("Namespace") == "Vigia":
        found.append((props["MetricName"], frozenset(d["Name"] for d in props.get("Dimensions", []))))
    for query in props.get("Metrics", []):
        stat = query.get("MetricStat", {}).get("Metric", {})
        if stat.get("Namespace") == "Vigia":
            found.append((stat["MetricName"], frozenset(d["Name"] for d in stat.get("Dimensions", []))))
        found += [(m, frozenset(k.strip() for k in keys.split(",") if k.strip()))
                  for m, keys in SCHEMA.findall(query.get("Expression", ""))]
    return found


def dashboard_body(template: dict[str, Any]) -> dict[str, Any]:
    (dash,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = dash["Properties"]["DashboardBody"]["Fn::Sub"]
    refs = set(re.findall(r"\$\{([\w:.]+)\}", body))
    resources = set(template["Resources"])
    assert all(r.startswith("AWS::") or r.split(".")[0] in resources for r in refs), refs
    return json.loads(re.sub(r"\$\{[\w:.]+\}", "x", body))


def test_every_alarm_notifies_the_operators_topic(template) -> None:
    assert template["Resources"]["OperatorsTopic"]["Type"] == "AWS::SNS::Topic"
    found = alarms(template)
    assert len(found) >= 7
    for name, props in found.items():
        assert props["AlarmActions"] == [{"Ref": "OperatorsTopic"}], name
        assert props["OKActions"] == [{"Ref": "OperatorsTopic"}], name


def test_the_required_alarms_are_there(template) -> None:
    found = alarms(template)
    watched = {name: {s[0] for s in vigia_series_of_alarm(p)} | {p.get("MetricName")} for name, p in found.items()}

    def alarm_on(metric: str) -> list[str]:
        return [name for name, names in watched.items() if metric in names]

    (anomaly,) = [n for n, p in found.items()
                  if any("ANOMALY_DETECTION_BAND" in q.get("Expression", "") for q in p.get("Metrics", []))]
    assert "Notifications" in watched[anomaly] and found[anomaly]["ThresholdMetricId"] == "band"
    assert found[anomaly]["ComparisonOperator"] == "GreaterThanUpperThreshold"
    assert alarm_on("VerifierErrors") and alarm_on("Heartbeat") and alarm_on("CameraUp")
    (dead,) = alarm_on("ApproximateNumberOfMessagesVisible")
    assert found[dead]["Dimensions"][0]["Value"] == {"Fn::GetAtt": "CandidatesDeadLetterQueue.QueueName"}
    (age,) = alarm_on("ApproximateAgeOfOldestMessage")
    assert found[age]["Dimensions"][0]["Value"] == {"Fn::GetAtt": "CandidatesQueue.QueueName"}
    (silent,) = alarm_on("Heartbeat")
    assert found[silent]["TreatMissingData"] == "breaching"  # silence itself is what alarms


def test_alarms_read_only_series_the_code_emits(template, emitted) -> None:
    for name, props in alarms(template).items():
        for series in vigia_series_of_alarm(props):
            assert series in emitted, (name, series)


def test_dashboard_is_json_over_emitted_series(template, emitted) -> None:
    body = dashboard_body(template)
    seen: list[Series] = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                seen += [(m, frozenset(k.strip() for k in keys.split(",") if k.strip()))
                         for m, keys in SCHEMA.findall(row[0]["expression"])]
            elif row[0] == "Vigia":
                plain = [v for v in row[2:] if not isinstance(v, dict)]
                seen.append((row[1], frozenset(plain[0::2])))
    assert len(seen) >= 15
    missing = [s for s in seen if s not in emitted]
    assert missing == []
    alarm_widget = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widget[0]["properties"]["alarms"]) == len(alarms(template))
