"""Drift watch: per camera, the recent window's scores and alert rate against a reference window.

- Score distributions (the gateway's track score `edge_score`, the verifier's `score`): PSI over ten fixed,
  equal-width bins on [0, 1] (fixed so that two runs, or two cameras, are compared on the same scale),
  and the two-sample Kolmogorov-Smirnov statistic with its asymptotic p-value.
- A camera is flagged when a PSI is above 0.2, the usual line between "moderate" (0.1-0.2) and
  "significant" shift in scorecard monitoring; below `min_events` in either window nothing is flagged,
  because PSI's expected value under no change is about (bins-1)·(1/n + 1/m): 0.6 for 30 against 30 events.
  KS is reported beside it (it needs no bins and its p-value says how surprising D is for these sizes) but
  does not flag alone: over thousands of events it calls tiny, harmless moves significant.
- Alert rate (confirmed events a day) is flagged when it moved by `rate_factor` or more either way AND
  the recent count is more than three Poisson standard deviations from what the reference rate predicts
  (a ratio of 3 alerts to 1 is not news).

The windows do not overlap: reference = [now - recent - reference, now - recent), recent = [now - recent, now).
`run_drift(...)` is what the scheduled Lambda calls (`handler`); `vigia drift` prints the same result.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.events.record import iso_utc

log = logging.getLogger(__name__)

BINS = 10
PROPORTION_FLOOR = 1e-4  # an empty bin would make PSI infinite; this floor keeps one empty bin's share finite
MAX_EVENTS = 100_000  # per window, all cameras; reported when reached


@dataclass(frozen=True)
class DriftSettings:
    recent: timedelta = timedelta(days=7)
    reference: timedelta = timedelta(days=28)
    psi_threshold: float = 0.2
    min_events: int = 30
    rate_factor: float = 2.0

    def __post_init__(self) -> None:
        if self.recent <= timedelta(0) or self.reference <= timedelta(0):
            raise ValueError("--recent and --reference must be positive durations")
        if self.min_events < 2:
            raise ValueError(f"min_events must be at least 2, got {self.min_events}")


def parse_duration(text: str) -> timedelta:
    """`7d`, `36h`, `90m` → timedelta; anything else is a clear error."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    value, unit = text.strip()[:-1], text.strip()[-1:].lower()
    try:
        amount = float(value)
    except ValueError:
        amount = -1.0
    if unit not in units or amount <= 0:
        raise ValueError(f"duration {text!r}: expected a positive number and d, h or m, e.g. 7d")
    return timedelta(**{units[unit]: amount})


# --- statistics --------------------------------------------------------------------------------------------
def proportions(values: Sequence[float], bins: int = BINS) -> list[float]:
    """Share of values in each of `bins` equal-width bins on [0, 1] (1.0 goes to the last bin)."""
    counts = [0] * bins
    for v in values:
        counts[min(max(int(v * bins), 0), bins - 1)] += 1
    n = len(values)
    return [c / n for c in counts] if n else [0.0] * bins


def psi(reference: Sequence[float], recent: Sequence[float], bins: int = BINS) -> float:
    """Population stability index: Σ (recent − reference) · ln(recent / reference) over the bins."""
    if not reference or not recent:
        raise ValueError("PSI needs values in both windows")
    total = 0.0
    for e, a in zip(proportions(reference, bins), proportions(recent, bins), strict=True):
        e, a = max(e, PROPORTION_FLOOR), max(a, PROPORTION_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov D: the largest gap between the two empirical distribution functions."""
    if not a or not b:
        raise ValueError("KS needs values in both windows")
    xs, ys = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(xs) and j < len(ys):
        x = min(xs[i], ys[j])
        while i < len(xs) and xs[i] == x:
            i += 1
        while j < len(ys) and ys[j] == x:
            j += 1
        d = max(d, abs(i / len(xs) - j / len(ys)))
    return d


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic p-value of D for sizes n, m (Kolmogorov's series with Stephens' small-sample correction)."""
    en = math.sqrt(n * m / (n + m))
    lam = (en + 0.12 + 0.11 / en) * d
    if lam < 1e-3:
        return 1.0
    total = sum(2 * (-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return min(max(total, 0.0), 1.0)


# --- per camera --------------------------------------------------------------------------------------------
@dataclass
class SeriesDrift:
    series: str
    reference_n: int
    recent_n: int
    psi: float | None = None
    ks: float | None = None
    ks_pvalue: float | None = None
    flagged: bool = False
    note: str | None = None


@dataclass
class AlertRate:
    reference_alerts: int
    recent_alerts: int
    reference_per_day: float
    recent_per_day: float
    ratio: float | None
    flagged: bool = False


@dataclass
class CameraDrift:
    camera_id: str
    series: list[SeriesDrift]
    alert_rate: AlertRate
    thresholds: dict[str, list[float]]  # edge thresholds seen in each window: a change there moves edge_score
    reasons: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"flagged": self.flagged}


def compare_series(name: str, reference: Sequence[float], recent: Sequence[float],
                   settings: DriftSettings) -> SeriesDrift:
    out = SeriesDrift(series=name, reference_n=len(reference), recent_n=len(recent))
    if min(len(reference), len(recent)) < settings.min_events:
        out.note = f"fewer than {settings.min_events} events in a window: not judged"
        return out
    out.psi = round(psi(reference, recent), 4)
    out.ks = round(ks_statistic(reference, recent), 4)
    out.ks_pvalue = ks_pvalue(out.ks, len(reference), len(recent))
    out.flagged = out.psi > settings.psi_threshold
    return out


def compare_alert_rate(reference_alerts: int, recent_alerts: int, settings: DriftSettings) -> AlertRate:
    ref_days, rec_days = settings.reference / timedelta(days=1), settings.recent / timedelta(days=1)
    ref_rate, rec_rate = reference_alerts / ref_days, recent_alerts / rec_days
    ratio = rec_rate / ref_rate if ref_rate else None
    expected = ref_rate * rec_days
    far = abs(recent_alerts - expected) > 3 * math.sqrt(max(expected, 1.0))
    moved = (ratio is None and recent_alerts > 0) or (
        ratio is not None and (ratio >= settings.rate_factor or ratio <= 1 / settings.rate_factor))
    return AlertRate(reference_alerts, recent_alerts, round(ref_rate, 4), round(rec_rate, 4),
                     None if ratio is None else round(ratio, 4), flagged=bool(moved and far))


def compare_camera(camera_id: str, reference: Sequence[Any], recent: Sequence[Any],
                   settings: DriftSettings = DriftSettings()) -> CameraDrift:
    """`reference` / `recent`: the camera's EventRecords in each window."""
    series = [compare_series("edge_score", [r.edge_score for r in reference], [r.edge_score for r in recent],
                             settings),
              compare_series("verifier_score", [r.score for r in reference], [r.score for r in recent], settings)]
    rate = compare_alert_rate(sum(r.decision == "confirmed" for r in reference),
                              sum(r.decision == "confirmed" for r in recent), settings)
    thresholds = {"reference": sorted({r.edge_threshold for r in reference}),
                  "recent": sorted({r.edge_threshold for r in recent})}
    out = CameraDrift(camera_id, series, rate, thresholds)
    for s in series:
        if s.flagged:
            out.reasons.append(f"{s.series}: PSI {s.psi:.3f} > {settings.psi_threshold} (KS D {s.ks:.3f}, "
                               f"p {s.ks_pvalue:.2g}; {s.reference_n} → {s.recent_n} events)")
    if rate.flagged:
        out.reasons.append(f"alert rate {rate.reference_per_day:.2f} → {rate.recent_per_day:.2f} a day")
    if out.reasons and thresholds["reference"] != thresholds["recent"]:
        out.reasons.append(f"note: the edge threshold changed ({thresholds['reference']} → "
                           f"{thresholds['recent']}), which moves edge_score by itself")
    return out


def _by_camera(records: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in records:
        out.setdefault(r.camera_id, []).append(r)
    return out


def _window(store: Any, since: datetime, until: datetime) -> list[Any]:
    records = store.query(since=since, until=until, limit=MAX_EVENTS)
    if len(records) >= MAX_EVENTS:
        log.warning("drift window capped; the newest events are used",
                    extra={"since": since.isoformat(), "until": until.isoformat(), "limit": MAX_EVENTS})
    # `until` is exclusive here, whatever the store's BETWEEN does: an event is in exactly one window
    end = iso_utc(until)
    return [r for r in records if r.started_at < end]


def run_drift(store: Any, now: datetime | None = None, settings: DriftSettings = DriftSettings(),
              cameras: Iterable[str] | None = None) -> dict[str, Any]:
    """Compare the windows for every camera with events in either (or the given ones); emit the metrics."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    split = now - settings.recent
    reference = _by_camera(_window(store, split - settings.reference, split))
    recent = _by_camera(_window(store, split, now))
    names = sorted(set(cameras) if cameras is not None else set(reference) | set(recent))
    results = [compare_camera(c, reference.get(c, []), recent.get(c, []), settings) for c in names]
    emitted = emit_drift_metrics(results)
    report = {"now": now.isoformat(), "recent": str(settings.recent), "reference": str(settings.reference),
              "psi_threshold": settings.psi_threshold, "min_events": settings.min_events,
              "cameras": [r.to_dict() for r in results], "flagged": [r.camera_id for r in results if r.flagged],
              "metrics_emitted": emitted}
    log.info("drift checked", extra={"cameras": len(results), "flagged": report["flagged"]})
    return report


def emit_drift_metrics(results: Sequence[CameraDrift]) -> bool:
    """One metric set per camera through cloud.metrics (EMF; where the lines go is the process's metrics
    configuration). False when that package is not installed."""
    try:
        from cloud.metrics import metrics_for
    except ImportError:
        log.warning("cloud.metrics not available; drift metrics not emitted", extra={})
        return False
    metrics = metrics_for("drift")
    for r in results:
        dims = {"camera_id": r.camera_id}
        metrics.emit("DriftFlagged", 1.0 if r.flagged else 0.0, "Count", dims)
        for s in r.series:
            if s.psi is not None:
                metrics.emit("ScoreDriftPsi", s.psi, "None", dims | {"series": s.series})
                metrics.emit("ScoreDriftKs", float(s.ks or 0.0), "None", dims | {"series": s.series})
        if r.alert_rate.ratio is not None:
            metrics.emit("AlertRateRatio", r.alert_rate.ratio, "None", dims)
    return True


def handler(event: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
    """EventBridge-scheduled Lambda: the store from VIGIA_* settings; windows from the event if given
    ({"recent": "7d", "reference": "28d"})."""
    from cloud.metrics import configure_from_settings
    from cloud.settings import CloudSettings

    cloud_settings = CloudSettings()
    configure_from_settings(cloud_settings)  # AWS: EMF on stdout, which Lambda turns into metrics
    event = event or {}
    settings = DriftSettings(recent=parse_duration(event.get("recent", "7d")),
                             reference=parse_duration(event.get("reference", "28d")))
    return run_drift(open_event_store(cloud_settings), settings=settings)


def open_event_store(settings: Any) -> Any:
    if settings.store == "aws":
        from cloud.events.dynamodb import DynamoEventStore

        return DynamoEventStore(settings.table)
    from cloud.events.sqlite import SqliteEventStore

    return SqliteEventStore(settings.data_dir / "events.sqlite3")
