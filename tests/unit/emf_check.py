"""The EMF specification's shape, checked on a parsed line (shared by the metrics tests)."""

from __future__ import annotations

from typing import Any


def assert_emf(doc: dict[str, Any], namespace: str = "Vigia") -> list[str]:
    """Assert `doc` is a valid EMF document; returns its metric names."""
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
    names: list[str] = []
    assert isinstance(meta["CloudWatchMetrics"], list) and meta["CloudWatchMetrics"]
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == namespace
        assert isinstance(directive["Dimensions"], list) and directive["Dimensions"]
        for dim_set in directive["Dimensions"]:
            assert isinstance(dim_set, list) and len(dim_set) <= 30
            for key in dim_set:
                assert isinstance(doc[key], str) and doc[key], key  # every dimension is a top-level string
        assert directive["Metrics"]
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            value = doc[metric["Name"]]  # every metric has a top-level value: a number or a list of numbers
            values = value if isinstance(value, list) else [value]
            assert values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            names.append(metric["Name"])
    return names
