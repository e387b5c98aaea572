"""CloudWatch Embedded Metric Format: one JSON object a line, metrics plus the `_aws` metadata that tells
CloudWatch Logs which keys are metrics and which are dimensions.

`build_emf` is the stdlib builder (the fallback when aws-lambda-powertools is not installed, and the
reference shape the tests check); `powertools_emf` serializes through powertools' EMF provider.
Both give the same document: `{"_aws": {"Timestamp", "CloudWatchMetrics": [{"Namespace", "Dimensions",
"Metrics"}]}, <dimension keys>, <property keys>, <metric name>: value}`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from cloud.metrics.names import NAMESPACE, UNITS

MAX_DIMENSIONS = 30  # per dimension set (EMF specification)
MAX_DIMENSION_VALUE = 1024


class MetricError(ValueError):
    """A metric that CloudWatch would refuse (bad name, unit, value or dimension)."""


def check_metric(name: str, value: float, unit: str, dimensions: Mapping[str, str]) -> None:
    if not name or len(name) > 255 or name.startswith("_"):
        raise MetricError(f"metric name {name!r}: 1-255 characters, not starting with '_'")
    if unit not in UNITS:
        raise MetricError(f"metric {name}: unit {unit!r} is not a CloudWatch unit")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MetricError(f"metric {name}: value {value!r} is not a finite number")
    if len(dimensions) > MAX_DIMENSIONS:
        raise MetricError(f"metric {name}: {len(dimensions)} dimensions, at most {MAX_DIMENSIONS}")
    for key, val in dimensions.items():
        if not isinstance(val, str) or not val or len(val) > MAX_DIMENSION_VALUE:
            raise MetricError(f"metric {name}: dimension {key}={val!r} must be a non-empty string ≤1024")
        if key == name or key == "_aws":
            raise MetricError(f"metric {name}: dimension key {key!r} collides with a reserved key")


def build_emf(name: str, value: float, unit: str, dimensions: Mapping[str, str],
              properties: Mapping[str, Any] | None = None, *, namespace: str = NAMESPACE,
              timestamp_ms: int | None = None) -> dict[str, Any]:
    check_metric(name, value, unit, dimensions)
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [sorted(dimensions)],
                "Metrics": [{"Name": name, "Unit": unit}],
            }],
        },
    }
    for key, val in (properties or {}).items():
        if key not in dimensions and key != name:
            doc[key] = val
    doc.update(dimensions)
    doc[name] = float(value)
    return doc


def powertools_emf(name: str, value: float, unit: str, dimensions: Mapping[str, str],
                   properties: Mapping[str, Any] | None = None, *, namespace: str = NAMESPACE) -> dict[str, Any]:
    """The same document through aws-lambda-powertools (a fresh provider per metric: no shared state)."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    check_metric(name, value, unit, dimensions)
    provider = AmazonCloudWatchEMFProvider(namespace=namespace)
    provider.add_metric(name=name, unit=unit, value=float(value))
    for key, val in sorted(dimensions.items()):
        provider.add_dimension(name=key, value=val)
    for key, val in (properties or {}).items():
        if key not in dimensions and key != name:
            provider.add_metadata(key=key, value=val)
    return provider.serialize_metric_set()


def powertools_available() -> bool:
    try:
        import aws_lambda_powertools  # noqa: F401
    except ImportError:
        return False
    return True
