"""Cloud metrics in CloudWatch Embedded Metric Format (namespace "Vigia").

    from cloud import metrics
    metrics.emit("Verdicts", 1, "Count", {"gateway_id": g, "camera_id": c, "decision": "confirmed"})

Where the lines go is configured once per process (`configure_from_settings`, called by the runtime
wiring): in AWS mode to stdout, where Lambda's CloudWatch Logs turns EMF lines into metrics (serialized by
aws-lambda-powertools); on the embedded default to `<data dir>/metrics/cloud.jsonl`, size-bounded and
rotated, the same lines (`vigia stats` reads them). Unconfigured, nothing is written. Emitting never
raises into the caller: a bad metric is a warning log line and is dropped.

`correlation(event_id)` makes the event id a property of every metric line (and, through
`CorrelationFilter`, a `correlation_id` of every log line) emitted inside it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from cloud.metrics.emf import MetricError, build_emf, powertools_available, powertools_emf
from cloud.metrics.names import ALL_METRICS, CLOUD_METRICS, EDGE_METRICS, NAMESPACE
from cloud.metrics.sink import RotatingJsonl

__all__ = [
    "ALL_METRICS", "CLOUD_METRICS", "EDGE_METRICS", "NAMESPACE", "CorrelationFilter", "MetricError",
    "ServiceMetrics", "configure", "configure_from_settings", "correlation", "count", "emit", "metrics_for",
]

log = logging.getLogger(__name__)

Mode = Literal["off", "file", "stdout"]
METRICS_FILE = Path("metrics") / "cloud.jsonl"

_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("vigia_event_id", default=None)


class _State:
    def __init__(self) -> None:
        self.mode: Mode = "off"
        self.sink: RotatingJsonl | None = None
        self.use_powertools = powertools_available()
        self.lock = threading.Lock()


_state = _State()


def configure(mode: Mode, path: Path | None = None, *, max_bytes: int = 5_000_000, backups: int = 3,
              use_powertools: bool | None = None) -> None:
    """`file` needs `path`; `stdout` is what Lambda (and ECS with an EMF-aware log agent) collects."""
    if mode == "file" and path is None:
        raise ValueError("metrics mode 'file' needs a path")
    with _state.lock:
        _state.mode = mode
        _state.sink = RotatingJsonl(path, max_bytes=max_bytes, backups=backups) if mode == "file" and path else None
        _state.use_powertools = powertools_available() if use_powertools is None else use_powertools


def configure_from_settings(settings: Any) -> None:
    """A CloudSettings: store=aws → stdout EMF; store=local → `<data_dir>/metrics/cloud.jsonl`."""
    if settings.store == "aws":
        configure("stdout")
    else:
        configure("file", Path(settings.data_dir) / METRICS_FILE)


def current_path() -> Path | None:
    return _state.sink.path if _state.sink else None


@contextmanager
def correlation(event_id: str | None) -> Iterator[None]:
    token = _event_id.set(event_id)
    try:
        yield
    finally:
        _event_id.reset(token)


class CorrelationFilter(logging.Filter):
    """Adds `correlation_id` (the event id being handled) to log records that have none."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = _event_id.get()
        return True


def emit(name: str, value: float, unit: str = "Count", dimensions: Mapping[str, str] | None = None, *,
         properties: Mapping[str, Any] | None = None, rollup: Sequence[str] | None = None) -> None:
    """One EMF line for the metric with `dimensions`; with `rollup`, a second line keeping only those
    dimension keys (e.g. `()` for the fleet total that an anomaly alarm watches)."""
    if _state.mode == "off":
        return
    dims = {k: v for k, v in (dimensions or {}).items() if v is not None}
    props = dict(properties or {})
    eid = _event_id.get()
    if eid is not None:
        props.setdefault("event_id", eid)
    sets = [(dims, props)]
    if rollup is not None:  # marked, so that a summary of the lines does not count it twice
        sets.append(({k: dims[k] for k in rollup if k in dims}, {**props, "rollup": True}))
    for dim_set, line_props in sets:
        try:
            doc = (powertools_emf if _state.use_powertools else build_emf)(name, value, unit, dim_set, line_props)
            _write(doc)
        except Exception as exc:  # metrics must never break the work they describe
            log.warning("metric %s dropped: %s", name, exc, extra={"event_id": eid, "metric": name})


def count(name: str, dimensions: Mapping[str, str] | None = None, value: float = 1, **kwargs: Any) -> None:
    emit(name, value, "Count", dimensions, **kwargs)


def _write(doc: dict[str, Any]) -> None:
    if _state.mode == "file" and _state.sink is not None:
        _state.sink.write(doc)
    elif _state.mode == "stdout":
        sys.stdout.write(json.dumps(doc, separators=(",", ":"), default=str) + "\n")
        sys.stdout.flush()


class ServiceMetrics:
    """Metrics of one service (verifier, feedback, drift...): the service name rides as a property."""

    def __init__(self, service: str) -> None:
        self.service = service

    def emit(self, name: str, value: float, unit: str = "Count", dimensions: Mapping[str, str] | None = None,
             **kwargs: Any) -> None:
        props = {"service": self.service, **(kwargs.pop("properties", None) or {})}
        emit(name, value, unit, dimensions, properties=props, **kwargs)

    def count(self, name: str, dimensions: Mapping[str, str] | None = None, value: float = 1, **kwargs: Any) -> None:
        self.emit(name, value, "Count", dimensions, **kwargs)


def metrics_for(service: str) -> ServiceMetrics:
    return ServiceMetrics(service)
