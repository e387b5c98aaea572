"""The dated price file: `prices-YYYY-MM.json` next to this module, each price with its unit, source and
the date it was read. The newest file is the default."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
REQUIRED = (
    "kvs_ingest_gb", "kvs_storage_gb_month", "kvs_consume_gb", "lambda_gb_s", "lambda_request",
    "ecs_gpu_instance_hour", "s3_storage_gb_month", "s3_put_request", "s3_get_request",
    "dynamodb_write_request_unit", "dynamodb_read_request_unit", "dynamodb_storage_gb_month", "sqs_request",
    "sns_publish", "sns_http_delivery", "iot_message", "iot_connection_minute", "iot_shadow_operation",
    "iot_rule_triggered", "iot_rule_action", "cloudwatch_metric_month", "cloudwatch_logs_ingest_gb",
    "cloudwatch_logs_storage_gb_month", "cloudwatch_alarm_metric_month", "cloudwatch_dashboard_month",
)


@dataclass(frozen=True)
class PriceBook:
    path: Path
    region: str
    compiled: str
    usd: dict[str, float]
    unverified: tuple[str, ...]

    def __getitem__(self, key: str) -> float:
        return self.usd[key]


def default_price_file() -> Path:
    files = sorted(HERE.glob("prices-*.json"), key=lambda p: p.name)
    if not files:
        raise FileNotFoundError(f"no prices-YYYY-MM.json in {HERE}")
    return files[-1]


def load_prices(path: Path | None = None) -> PriceBook:
    path = Path(path) if path else default_price_file()
    if not re.fullmatch(r"prices-\d{4}-\d{2}(-[\w-]+)?\.json", path.name):
        raise ValueError(f"{path.name}: a price file is named prices-YYYY-MM.json (its date)")
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    prices = doc.get("prices") or {}
    missing = [k for k in REQUIRED if k not in prices]
    if missing:
        raise ValueError(f"{path}: prices missing: {', '.join(missing)}")
    usd: dict[str, float] = {}
    for key, entry in prices.items():
        value = entry.get("usd") if isinstance(entry, dict) else None
        if not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{path}: price {key}: 'usd' must be a number ≥ 0, got {value!r}")
        for field in ("unit", "source", "as_of"):
            if not entry.get(field):
                raise ValueError(f"{path}: price {key} has no {field!r}")
        usd[key] = float(value)
    unverified = tuple(sorted(k for k, e in prices.items() if not e.get("verified", False)))
    return PriceBook(path, doc.get("region", "?"), doc.get("compiled", "?"), usd, unverified)
