"""Read EMF lines back (the embedded default's `metrics/*.jsonl`, from the gateway and the cloud) and
summarise them per camera: what `vigia stats` prints.

Rollup lines (marked `"rollup": true`, the fleet copies an anomaly alarm watches) are skipped so that
nothing is counted twice. A line that is not EMF is counted as skipped, never fatal.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CAMERA_COUNTS = ("FramesProcessed", "DetectorCalls", "ClipsProcessed", "ClipsFailed", "Candidates",
                 "CandidatesReceived", "Notifications", "FramesDropped", "Reconnects")
BY_KEY = {"Suppressed": "rule", "Dropped": "reason", "Verdicts": "decision", "feedback": "label",
          "DeadLetters": "reason"}
DISTRIBUTIONS = {"VerifierLatency": "latency_ms", "QueueAge": "queue_age_s"}


@dataclass(frozen=True)
class Point:
    name: str
    unit: str
    value: float
    dimensions: dict[str, str]
    timestamp_ms: int


def parse_line(line: str) -> list[Point]:
    """The metric values of one EMF line; ValueError if it is not an EMF document."""
    return points_of(parse_doc(line))


def parse_doc(line: str) -> dict[str, Any]:
    doc = json.loads(line)
    if not isinstance(doc, dict) or not isinstance(doc.get("_aws"), dict):
        raise ValueError("no _aws metadata")
    return doc


def points_of(doc: dict[str, Any]) -> list[Point]:
    meta = doc["_aws"]
    ts = int(meta.get("Timestamp", 0))
    points: list[Point] = []
    for directive in meta.get("CloudWatchMetrics", []):
        dim_keys = sorted({k for dim_set in directive.get("Dimensions", []) for k in dim_set})
        dims = {k: str(doc[k]) for k in dim_keys if k in doc}
        for metric in directive.get("Metrics", []):
            raw = doc.get(metric["Name"])
            values = raw if isinstance(raw, list) else [raw]
            for value in values:
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    points.append(Point(metric["Name"], metric.get("Unit", "None"), float(value), dims, ts))
    return points


def metric_files(root: Path) -> list[Path]:
    """Every metrics file under `root` (a data dir, a metrics dir, or one file), rotated ones included."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.jsonl*") if p.parent.name == "metrics" and p.is_file())


def read_points(files: Iterable[Path], since_ms: int | None = None, counts: dict[str, int] | None = None
                ) -> Iterator[Point]:
    counts = counts if counts is not None else {}
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    doc = parse_doc(line)
                    if doc.get("rollup") is True:
                        counts["rollup_lines"] = counts.get("rollup_lines", 0) + 1
                        continue
                    points = points_of(doc)
                except (ValueError, KeyError, TypeError):
                    counts["skipped_lines"] = counts.get("skipped_lines", 0) + 1
                    continue
                counts["lines"] = counts.get("lines", 0) + 1
                for point in points:
                    if since_ms is None or point.timestamp_ms >= since_ms:
                        yield point


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


def summarise(points: Iterable[Point]) -> dict[str, Any]:
    cameras: dict[str, dict[str, Any]] = {}  # by camera id (some cloud lines, e.g. feedback, lack the gateway)
    fleet: dict[str, float] = defaultdict(float)
    fleet_by: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    fleet_samples: dict[str, list[float]] = defaultdict(list)
    first = last = None
    for p in points:
        first = p.timestamp_ms if first is None else min(first, p.timestamp_ms)
        last = p.timestamp_ms if last is None else max(last, p.timestamp_ms)
        camera = p.dimensions.get("camera_id")
        if p.name in DISTRIBUTIONS:
            fleet_samples[p.name].append(p.value)
            if camera:
                samples[camera][p.name].append(p.value)
            continue
        if camera is None:
            if p.name in BY_KEY and BY_KEY[p.name] in p.dimensions:
                fleet_by[p.name][p.dimensions[BY_KEY[p.name]]] += p.value
            elif p.name not in ("CameraUp",):
                fleet[p.name] += p.value
            continue
        row = cameras.setdefault(camera, {"gateway_id": "", "camera_id": camera,
                                          **{name: 0.0 for name in CAMERA_COUNTS},
                                          **{name: {} for name in BY_KEY}})
        gateway = p.dimensions.get("gateway_id")
        if gateway and gateway not in row["gateway_id"].split(","):
            row["gateway_id"] = ",".join(filter(None, [*row["gateway_id"].split(","), gateway]))
        if p.name in BY_KEY:
            sub = p.dimensions.get(BY_KEY[p.name], "unknown")
            row[p.name][sub] = row[p.name].get(sub, 0.0) + p.value
        elif p.name == "CameraUp":
            row["CameraUp"] = p.value  # the latest seen (lines are read oldest first)
        else:
            row[p.name] = row.get(p.name, 0.0) + p.value
    rows = []
    for key in sorted(cameras):
        row = cameras[key]
        for name, label in DISTRIBUTIONS.items():
            values = samples[key][name]
            row[f"{label}_p50"] = percentile(values, 50)
            row[f"{label}_p95"] = percentile(values, 95)
        rows.append(row)
    fleet_out: dict[str, Any] = {k: v for k, v in sorted(fleet.items())}
    fleet_out.update({k: dict(sorted(v.items())) for k, v in sorted(fleet_by.items())})
    for name, label in DISTRIBUTIONS.items():
        fleet_out[f"{label}_p50"] = percentile(fleet_samples[name], 50)
        fleet_out[f"{label}_p95"] = percentile(fleet_samples[name], 95)
    return {
        "from": _iso(first), "to": _iso(last),
        "cameras": rows, "fleet": fleet_out,
    }


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2h`, `30m`, `7d`, `1w` ago, or an ISO 8601 time (naive = UTC)."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match:
        seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        return now - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a duration (30m, 2h, 7d) or an ISO time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def summarise_dir(root: Path, since: datetime | None = None) -> dict[str, Any]:
    files = metric_files(root)
    if not files:
        raise FileNotFoundError(f"no metrics files under {root} (expected <data dir>/**/metrics/*.jsonl)")
    counts: dict[str, int] = {}
    since_ms = None if since is None else int(since.timestamp() * 1000)
    summary = summarise(read_points(files, since_ms, counts))
    summary["files"] = [str(p) for p in files]
    summary["lines"] = counts.get("lines", 0)
    summary["skipped_lines"] = counts.get("skipped_lines", 0)
    return summary
