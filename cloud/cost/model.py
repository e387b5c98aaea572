"""The cost model: usage → monthly line items. A month is 30 days (720 h, 43,200 min).

What is counted, per month (N cameras, C clips a camera a day, r = the gateway's candidate rate):
- clips sent up: N·C·30·r edge-filtered, N·C·30 when every clip goes to the cloud;
- Kinesis Video: those clips ingested, kept `kvs_retention_hours`, read once by the verifier;
- verifier: Lambda GB-s (clips × verifier_s × memory) and one request a clip (conservative: batches
  of one), or ECS GPU instance hours (busy hours / utilisation, at least `ecs_min_tasks` running);
- S3: clip + snapshot per verified clip (two PUTs), kept `retention_days` (rejected: `rejected_media_days`);
- DynamoDB on-demand: one read (idempotency check) and one item write per verified clip, times the GSIs
  that replicate it; confirmed events add two updates (notification claim, notified); storage of the
  retained items;
- SQS: send + receive + delete per clip; SNS: one publish and one delivery per confirmed event;
- IoT Core: each candidate message (5 KB increments, the base64 snapshot inside), a heartbeat per
  gateway every `heartbeat_s`, one connection per gateway all month, shadow operations, the rule that
  forwards candidates (one trigger + one action each);
- CloudWatch: custom metrics (series per camera, per gateway and fleet-wide), EMF + log lines ingested and
  kept, alarms (metric-equivalents) and dashboards from the stack.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from cloud.cost.prices import PriceBook

DAYS = 30
HOURS = DAYS * 24
MINUTES = HOURS * 60
GB = 1024.0  # MB per GB


@dataclass(frozen=True)
class Usage:
    cameras: int = 10
    clips_per_day: float = 200.0
    candidate_rate: float = 0.05
    confirm_rate: float = 0.5
    verifier_s: float = 2.0
    clip_mb: float = 4.0
    snapshot_kb: float = 60.0
    retention_days: float = 90.0
    rejected_media_days: float = 30.0
    kvs_retention_hours: float = 24.0
    runtime: Literal["lambda", "ecs-gpu"] = "lambda"
    lambda_memory_mb: float = 3008.0
    ecs_min_tasks: int = 1
    ecs_utilization: float = 0.5
    cameras_per_gateway: int = 8
    heartbeat_s: float = 60.0
    shadow_ops_per_gateway: float = 60.0
    item_kb: float = 2.0
    gsi_count: int = 2
    metric_series_per_camera: int = 28
    metric_series_per_gateway: int = 2
    metric_series_fleet: int = 12
    edge_emf_bytes_per_camera_minute: float = 1500.0
    log_bytes_per_clip: float = 8000.0
    log_retention_days: float = 30.0
    alarm_metrics: float = 0.0
    dashboards: int = 0
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # where each value came from

    def validate(self) -> Usage:
        checks = {
            "cameras": self.cameras >= 1, "clips_per_day": self.clips_per_day >= 0,
            "candidate_rate": 0 <= self.candidate_rate <= 1, "confirm_rate": 0 <= self.confirm_rate <= 1,
            "verifier_s": self.verifier_s >= 0, "clip_mb": self.clip_mb >= 0,
            "retention_days": self.retention_days >= 0,
            "runtime": self.runtime in ("lambda", "ecs-gpu"), "ecs_utilization": 0 < self.ecs_utilization <= 1,
            "cameras_per_gateway": self.cameras_per_gateway >= 1, "heartbeat_s": self.heartbeat_s > 0,
            "lambda_memory_mb": 128 <= self.lambda_memory_mb <= 10240,
        }
        bad = [f"{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"usage out of range: {', '.join(bad)}")
        return self

    @property
    def gateways(self) -> int:
        return math.ceil(self.cameras / self.cameras_per_gateway)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LineItem:
    service: str
    item: str
    quantity: float
    unit: str
    unit_usd: float

    @property
    def usd(self) -> float:
        return self.quantity * self.unit_usd


def clips_sent(usage: Usage, scenario: str) -> float:
    """Clips a month that reach the cloud: the gateway's candidates, or every clip."""
    all_clips = usage.cameras * usage.clips_per_day * DAYS
    return all_clips * usage.candidate_rate if scenario == "edge" else all_clips


def estimate(usage: Usage, prices: PriceBook, scenario: Literal["edge", "all"] = "edge") -> list[LineItem]:
    u = usage.validate()
    p = prices
    clips = clips_sent(u, scenario)
    confirmed = clips * u.confirm_rate
    clip_gb = clips * u.clip_mb / GB
    snap_gb = clips * u.snapshot_kb / (GB * GB)
    items: list[LineItem] = []

    def add(service: str, item: str, quantity: float, unit: str, price_key: str) -> None:
        items.append(LineItem(service, item, quantity, unit, p[price_key]))

    add("Kinesis Video", "ingest", clip_gb, "GB", "kvs_ingest_gb")
    add("Kinesis Video", "storage", clip_gb * u.kvs_retention_hours / HOURS, "GB-month", "kvs_storage_gb_month")
    add("Kinesis Video", "read by the verifier", clip_gb, "GB", "kvs_consume_gb")
    if u.runtime == "lambda":
        add("Lambda", "compute", clips * u.verifier_s * u.lambda_memory_mb / 1024.0, "GB-s", "lambda_gb_s")
        add("Lambda", "requests", clips, "requests", "lambda_request")
    else:
        busy_h = clips * u.verifier_s / 3600.0
        add("ECS GPU", "instance hours", max(u.ecs_min_tasks * HOURS, busy_h / u.ecs_utilization), "hours",
            "ecs_gpu_instance_hour")
    kept_gb = (clip_gb + snap_gb) / DAYS  # per day of retention, split by verdict below
    stored_gb = kept_gb * (u.confirm_rate * u.retention_days + (1 - u.confirm_rate) * u.rejected_media_days)
    add("S3", "storage", stored_gb, "GB-month", "s3_storage_gb_month")
    add("S3", "PUT (clip + snapshot)", clips * 2, "requests", "s3_put_request")
    item_wru = math.ceil(u.item_kb)
    add("DynamoDB", "writes", clips * item_wru * (1 + u.gsi_count) + confirmed * 2 * item_wru, "WRU",
        "dynamodb_write_request_unit")
    add("DynamoDB", "reads", clips, "RRU", "dynamodb_read_request_unit")
    add("DynamoDB", "storage", clips / DAYS * u.retention_days * u.item_kb * (1 + u.gsi_count) / (GB * GB),
        "GB-month", "dynamodb_storage_gb_month")
    add("SQS", "send/receive/delete", clips * 3, "requests", "sqs_request")
    add("SNS", "publish", confirmed, "requests", "sns_publish")
    add("SNS", "deliveries", confirmed, "deliveries", "sns_http_delivery")
    message_units = math.ceil((u.snapshot_kb * 4 / 3 + 2.0) / 5.0)  # base64 snapshot + ~2 KB of JSON
    gateways = u.gateways
    add("IoT Core", "candidate messages", clips * message_units, "5 KB messages", "iot_message")
    add("IoT Core", "heartbeats", gateways * MINUTES * 60.0 / u.heartbeat_s, "messages", "iot_message")
    add("IoT Core", "connectivity", gateways * MINUTES, "connection-minutes", "iot_connection_minute")
    add("IoT Core", "shadow operations", gateways * u.shadow_ops_per_gateway, "operations", "iot_shadow_operation")
    add("IoT Core", "rule triggered", clips, "rules", "iot_rule_triggered")
    add("IoT Core", "rule actions", clips, "actions", "iot_rule_action")
    series = u.cameras * u.metric_series_per_camera + gateways * u.metric_series_per_gateway + u.metric_series_fleet
    add("CloudWatch", "custom metrics", series, "metrics", "cloudwatch_metric_month")
    logs_gb = (u.cameras * u.edge_emf_bytes_per_camera_minute * MINUTES + clips * u.log_bytes_per_clip) / GB ** 3
    add("CloudWatch", "logs ingested", logs_gb, "GB", "cloudwatch_logs_ingest_gb")
    add("CloudWatch", "logs stored", logs_gb * u.log_retention_days / DAYS, "GB-month",
        "cloudwatch_logs_storage_gb_month")
    add("CloudWatch", "alarms", u.alarm_metrics, "alarm metrics", "cloudwatch_alarm_metric_month")
    add("CloudWatch", "dashboards", u.dashboards, "dashboards", "cloudwatch_dashboard_month")
    return items


def by_service(items: list[LineItem]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        out[item.service] = out.get(item.service, 0.0) + item.usd
    return out


def compare(usage: Usage, prices: PriceBook) -> dict[str, Any]:
    """Edge-filtered beside every clip to the cloud: per service, fleet and per camera, in USD a month."""
    result: dict[str, Any] = {"usage": {k: v for k, v in usage.as_dict().items() if k != "sources"},
                              "sources": dict(usage.sources), "gateways": usage.gateways,
                              "prices": {"file": prices.path.name, "region": prices.region,
                                         "compiled": prices.compiled, "unverified": list(prices.unverified)}}
    for scenario in ("edge", "all"):
        items = estimate(usage, prices, scenario)  # type: ignore[arg-type]
        total = sum(i.usd for i in items)
        result[scenario] = {
            "clips_sent": clips_sent(usage, scenario),
            "services": by_service(items),
            "items": [{"service": i.service, "item": i.item, "quantity": i.quantity, "unit": i.unit,
                       "unit_usd": i.unit_usd, "usd": i.usd} for i in items],
            "fleet_usd": total,
            "per_camera_usd": total / usage.cameras,
        }
    result["saving_usd"] = result["all"]["fleet_usd"] - result["edge"]["fleet_usd"]
    return result


def with_overrides(usage: Usage, **values: Any) -> Usage:
    """`usage` with the given non-None values, each recorded as coming from the command line."""
    given = {k: v for k, v in values.items() if v is not None}
    sources = {**usage.sources, **dict.fromkeys(given, "command line")}
    return replace(usage, **given, sources=sources)
