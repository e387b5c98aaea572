"""Gateway metrics as CloudWatch Embedded Metric Format lines, with the standard library only (the gateway
does not install aws-lambda-powertools). Same line shape as `cloud.metrics` (namespace "Vigia"):

    {"_aws": {"Timestamp": ms, "CloudWatchMetrics": [{"Namespace": "Vigia",
     "Dimensions": [["camera_id", "gateway_id"]], "Metrics": [{"Name": "Candidates", "Unit": "Count"}]}]},
     "camera_id": "cam1", "gateway_id": "gw1", "Candidates": 3.0}

Counts are summed in memory and written once per `flush_s` (one line per metric and dimension set, not
one per frame) to `<edge data dir>/metrics/edge.jsonl`, size-bounded and rotated; on Greengrass the log
manager can ship that file. Gauges (CameraUp, OutboxPending) are written as they come, from the heartbeat.
Unconfigured, nothing is recorded. Recording never raises into the agent.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

NAMESPACE = "Vigia"
METRICS_FILE = Path("metrics") / "edge.jsonl"
# Kept in step with cloud/metrics/names.py EDGE_METRICS (a unit test compares them).
EDGE_METRICS: dict[str, str] = {
    "FramesProcessed": "Count",
    "DetectorCalls": "Count",
    "ClipsProcessed": "Count",
    "ClipsFailed": "Count",
    "Candidates": "Count",
    "Suppressed": "Count",
    "Dropped": "Count",
    "Heartbeat": "Count",
    "OutboxPending": "Count",
    "CameraUp": "None",
    "FramesDropped": "Count",
    "Reconnects": "Count",
}
MAX_SERIES = 5000  # distinct (metric, dimensions) held between flushes; more forces an early flush


def emf_line(name: str, value: float, unit: str, dimensions: Mapping[str, str],
             timestamp_ms: int | None = None) -> dict[str, Any]:
    if unit not in ("Count", "None", "Seconds", "Milliseconds", "Bytes", "Percent"):
        raise ValueError(f"metric {name}: unit {unit!r} not used by the gateway")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"metric {name}: value {value!r} is not a finite number")
    for key, val in dimensions.items():
        if not isinstance(val, str) or not val or len(val) > 1024:
            raise ValueError(f"metric {name}: dimension {key}={val!r} must be a non-empty string ≤1024")
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [sorted(dimensions)],
                                   "Metrics": [{"Name": name, "Unit": unit}]}],
        },
        **dict(dimensions),
        name: float(value),
    }


class RotatingFile:
    """Append lines; past `max_bytes` the file becomes `.1` (… up to `.backups`, the oldest deleted)."""

    def __init__(self, path: Path, max_bytes: int = 2_000_000, backups: int = 2) -> None:
        if max_bytes < 1024 or not 0 <= backups <= 100:
            raise ValueError(f"max_bytes={max_bytes} (≥1024), backups={backups} (0..100)")
        self.path, self.max_bytes, self.backups = Path(path), max_bytes, backups

    def append(self, lines: list[str]) -> None:
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        size = self.path.stat().st_size if self.path.exists() else 0
        if size and size + len(data) > self.max_bytes:
            for i in range(self.backups, 0, -1):
                newer = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
                if newer.exists():
                    os.replace(newer, self.path.with_name(f"{self.path.name}.{i}"))
            if self.backups == 0:
                self.path.unlink(missing_ok=True)
        with open(self.path, "ab") as fh:
            fh.write(data)


def dropped_rule(reason: str) -> str:
    """The tracker's free-text reason ("1 hit(s) < 3", "lasted 0.4s < 1s", "track score …") → a bounded value."""
    text = reason.lower()
    for key, rule in (("hit", "min_hits"), ("lasted", "min_duration"), ("score", "threshold")):
        if key in text:
            return rule
    return "other"


class EdgeMetrics:
    def __init__(self, path: Path, gateway_id: str, *, flush_s: float = 60.0, max_bytes: int = 2_000_000,
                 backups: int = 2, clock=time.monotonic) -> None:
        self.file = RotatingFile(path, max_bytes, backups)
        self.gateway_id = gateway_id
        self.flush_s = flush_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._last_flush = clock()
        self._last_camera: dict[str, tuple[int, int]] = {}  # camera → (dropped_frames, reconnects) seen

    def count(self, name: str, camera_id: str | None = None, value: float = 1, **dims: str) -> None:
        if name not in EDGE_METRICS:  # a fixed set of names keeps the metrics (and their cost) bounded
            raise ValueError(f"unknown gateway metric {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"metric {name}: value {value!r} is not a finite number")
        key_dims = {"gateway_id": self.gateway_id, **({"camera_id": camera_id} if camera_id else {}), **dims}
        key = (name, tuple(sorted(key_dims.items())))
        with self._lock:
            self._counts[key] = self._counts.get(key, 0.0) + value
            due = len(self._counts) >= MAX_SERIES or self._clock() - self._last_flush >= self.flush_s
        if due:
            self.flush()

    def gauge(self, name: str, value: float, camera_id: str | None = None) -> None:
        dims = {"gateway_id": self.gateway_id, **({"camera_id": camera_id} if camera_id else {})}
        self._write([emf_line(name, value, EDGE_METRICS[name], dims)])

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
            self._last_flush = self._clock()
        now = int(time.time() * 1000)
        docs = []
        for (name, dims), value in sorted(counts.items()):
            try:
                docs.append(emf_line(name, value, EDGE_METRICS[name], dict(dims), now))
            except ValueError as exc:  # one bad series (e.g. an empty dimension) must not cost the others
                log.warning("metric dropped: %s", exc)
        if docs:
            self._write(docs)

    def heartbeat(self, beat: Any) -> None:
        """A contracts.telemetry.Heartbeat: Heartbeat=1, OutboxPending, and per camera CameraUp (1 when its
        source is connected or a clip is being read, else 0), FramesDropped and Reconnects since the last beat."""
        self.count("Heartbeat")
        self.gauge("OutboxPending", beat.outbox_pending)
        for camera_id, status in beat.cameras.items():
            self.gauge("CameraUp", 1.0 if status.state in ("connected", "finished") else 0.0, camera_id)
            prev_dropped, prev_reconnects = self._last_camera.get(camera_id, (0, 0))
            # counters restart with the agent: a smaller value is a fresh count, not a negative delta
            dropped = status.dropped_frames - prev_dropped if status.dropped_frames >= prev_dropped \
                else status.dropped_frames
            reconnects = status.reconnects - prev_reconnects if status.reconnects >= prev_reconnects \
                else status.reconnects
            self._last_camera[camera_id] = (status.dropped_frames, status.reconnects)
            if len(self._last_camera) > 256:  # cameras removed from the config: forget the oldest
                self._last_camera.pop(next(iter(self._last_camera)))
            self.count("FramesDropped", camera_id, dropped)
            self.count("Reconnects", camera_id, reconnects)
        self.flush()

    def _write(self, docs: list[dict[str, Any]]) -> None:
        if not self.file.path.parent.parent.exists():  # the data dir is gone (a removed test or benchmark dir):
            return  # never re-create it just for metrics
        try:
            self.file.append([json.dumps(d, separators=(",", ":")) for d in docs])
        except OSError as exc:  # a full disk costs the metrics, never the detection
            log.warning("metrics not written: %s", exc, extra={"path": str(self.file.path)})


_current: EdgeMetrics | None = None


def configure(data_dir: Path, gateway_id: str, **kwargs: Any) -> EdgeMetrics:
    """Record to `<data_dir>/metrics/edge.jsonl` from now on (the agent calls this at start)."""
    global _current
    if _current is not None:
        _current.flush()
    else:
        atexit.register(flush)  # the counts of the last minute are not lost at a clean exit
    _current = EdgeMetrics(Path(data_dir) / METRICS_FILE, gateway_id, **kwargs)
    return _current


def count(name: str, camera_id: str | None = None, value: float = 1, **dims: str) -> None:
    if _current is not None:
        try:
            _current.count(name, camera_id, value, **dims)
        except Exception as exc:
            log.warning("metric %s dropped: %s", name, exc)


def heartbeat(beat: Any) -> None:
    if _current is not None:
        try:
            _current.heartbeat(beat)
        except Exception as exc:
            log.warning("heartbeat metrics dropped: %s", exc)


def flush() -> None:
    if _current is not None:
        _current.flush()
