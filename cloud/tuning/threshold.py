"""Choosing a camera's track threshold from labeled (score, person?) pairs.

The rule: among the thresholds whose person recall has a one-sided Clopper-Pearson lower bound at or above
the target, take the one that leaves the fewest false alerts (ties: the lowest, which keeps the most margin
for people); keep the current threshold when it already does as well. Recall only falls as the threshold
rises, so the passing thresholds are one run from the lowest up: testing them in that order and stopping at
the first failure is a fixed-sequence procedure, and the sweep does not inflate the error rate.

Nothing is recommended with fewer labeled people than `min_people`: a handful of labels says nothing about
a camera's people.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from cloud.tuning.bounds import clopper_pearson_lower, people_needed

Status = Literal["recommended", "unchanged", "too-few-labels", "no-threshold-meets-target"]

THRESHOLD_MIN, THRESHOLD_MAX = 0.05, 0.99  # contracts.CameraConfig.threshold bounds


@dataclass(frozen=True)
class LabeledScore:
    """One labeled unit: the gateway's score for it and whether a person was there."""

    score: float
    person: bool
    group: str = ""  # what must stay together in cross-validation (a clip, a source video)
    alerted: bool = False  # reached the customer (the verifier confirmed it)
    sent_threshold: float | None = None  # the threshold the gateway had when it sent it (store events)


@dataclass(frozen=True)
class TuningSettings:
    target: float = 0.98
    min_people: int = 30
    confidence: float = 0.95
    step: float = 0.01

    def __post_init__(self) -> None:
        if not 0.5 <= self.target < 1:
            raise ValueError(f"--target must be in [0.5, 1), got {self.target}")
        if self.min_people < 1:
            raise ValueError(f"--min-people must be at least 1, got {self.min_people}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"--confidence must be in [0.5, 1), got {self.confidence}")
        if not 0.001 <= self.step <= 0.1:
            raise ValueError(f"step must be in [0.001, 0.1], got {self.step}")


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    people_kept: int
    people_missed: int
    recall: float
    recall_lower: float
    false_alerts: int  # labeled not-person units at or above the threshold (candidates the gateway sends)
    false_alerts_notified: int  # of which the verifier confirmed them: what the customer received


@dataclass
class TuningResult:
    camera_id: str
    status: Status
    message: str
    people: int
    not_people: int
    current: float
    chosen: float | None
    before: CurvePoint
    after: CurvePoint | None
    target: float
    confidence: float
    min_people: int
    floor: float
    people_needed: int
    curve: list[CurvePoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """Only a recommendation may be applied."""
        return self.status == "recommended"

    def to_dict(self, with_curve: bool = True) -> dict:
        out = asdict(self)
        if not with_curve:
            out.pop("curve")
        out["valid"] = self.valid
        return out


def point_at(samples: Sequence[LabeledScore], threshold: float, confidence: float) -> CurvePoint:
    """Counts at one threshold; a unit passes when its score ≥ threshold (the gateway's own comparison)."""
    people = [s for s in samples if s.person]
    kept = sum(1 for s in people if s.score >= threshold)
    negatives = [s for s in samples if not s.person and s.score >= threshold]
    n = len(people)
    return CurvePoint(
        threshold=round(threshold, 4), people_kept=kept, people_missed=n - kept,
        recall=kept / n if n else 0.0,
        recall_lower=clopper_pearson_lower(kept, n, confidence) if n else 0.0,
        false_alerts=len(negatives), false_alerts_notified=sum(1 for s in negatives if s.alerted),
    )


def evaluable_floor(samples: Sequence[LabeledScore], default: float = THRESHOLD_MIN) -> float:
    """The lowest threshold the data can judge: the highest threshold any unit was sent under. Below it,
    units from periods with a higher threshold were filtered on the gateway and are not in the data."""
    sent = [s.sent_threshold for s in samples if s.sent_threshold is not None]
    return max(sent, default=default)


def _grid(low: float, high: float, step: float) -> list[float]:
    start = math.ceil(round(low / step, 6)) * step
    count = math.floor(round((high - start) / step, 6)) + 1
    return [round(start + i * step, 4) for i in range(max(count, 0))]


def select_threshold(samples: Sequence[LabeledScore], current: float, settings: TuningSettings = TuningSettings(),
                     camera_id: str = "", floor: float | None = None) -> TuningResult:
    if not THRESHOLD_MIN <= current <= THRESHOLD_MAX:
        raise ValueError(f"current threshold {current} is outside [{THRESHOLD_MIN}, {THRESHOLD_MAX}]")
    floor = evaluable_floor(samples) if floor is None else floor
    floor = min(max(floor, THRESHOLD_MIN), THRESHOLD_MAX)
    people = sum(1 for s in samples if s.person)
    grid = sorted(set(_grid(floor, THRESHOLD_MAX, settings.step)) | {round(current, 4)})
    curve = [point_at(samples, t, settings.confidence) for t in grid]
    before = next(p for p in curve if p.threshold == round(current, 4))
    needed = people_needed(settings.target, settings.confidence)
    base = dict(camera_id=camera_id, people=people, not_people=len(samples) - people, current=current,
                before=before, target=settings.target, confidence=settings.confidence,
                min_people=settings.min_people, floor=floor, people_needed=needed, curve=curve)
    notes = []
    if current < floor:
        notes.append(f"the current threshold {current:.2f} is below {floor:.2f}, the highest threshold these "
                     "units were sent under: 'before' misses the units a past, higher threshold filtered out")
    if people < settings.min_people:
        return TuningResult(status="too-few-labels", chosen=None, after=None, notes=notes, message=(
            f"{people} labeled people, fewer than the {settings.min_people} needed before anything changes: "
            "the threshold stays as it is; label more events (vigia feedback / the console)"), **base)
    # Fixed sequence: from the lowest evaluable threshold up, stop at the first that fails the bound.
    passing = []
    for p in curve:
        if p.threshold < floor:
            continue
        if p.recall_lower < settings.target:
            break
        passing.append(p)
    if not passing:
        return TuningResult(status="no-threshold-meets-target", chosen=None, after=None, notes=notes, message=(
            f"no threshold keeps the {settings.confidence:.0%} lower bound of person recall at or above "
            f"{settings.target:.2%}: with {people} labeled people the best bound is "
            f"{max((p.recall_lower for p in curve if p.threshold >= floor), default=0.0):.3f} "
            f"(proving {settings.target:.0%} needs at least {needed} labeled people with none missed); "
            "the threshold stays as it is"), **base)
    fewest = min(p.false_alerts for p in passing)
    current_passes = any(p.threshold == before.threshold for p in passing)
    if current_passes and before.false_alerts == fewest:
        return TuningResult(status="unchanged", chosen=current, after=before, notes=notes, message=(
            f"the current threshold {current:.2f} already leaves the fewest false alerts the target allows"),
            **base)
    best = min((p for p in passing if p.false_alerts == fewest), key=lambda p: p.threshold)
    return TuningResult(status="recommended", chosen=best.threshold, after=best, notes=notes, message=(
        f"threshold {current:.2f} → {best.threshold:.2f}: false alerts {before.false_alerts} → "
        f"{best.false_alerts}, people missed {before.people_missed} → {best.people_missed} of {people} "
        f"(recall {best.recall:.3f}, {settings.confidence:.0%} lower bound {best.recall_lower:.3f} ≥ "
        f"{settings.target:.3f})"), **base)


# --- honest evaluation: choose on some groups, report on the others --------------------------------------
@dataclass
class CrossValidation:
    folds: int
    groups: int
    thresholds: list[float | None]  # chosen per fold (None: that fold's rule refused to change)
    before: dict[str, int]
    after: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


def assign_folds(samples: Sequence[LabeledScore], folds: int) -> dict[str, int]:
    """Groups to folds, people-holding groups spread first so that every fold has people to judge."""
    with_people = sorted({s.group for s in samples if s.person})
    without = sorted({s.group for s in samples} - set(with_people))
    return {g: i % folds for i, g in enumerate(with_people + without)}


def cross_validate(samples: Sequence[LabeledScore], current: float, settings: TuningSettings = TuningSettings(),
                   folds: int = 5, floor: float | None = None) -> CrossValidation:
    """k-fold by group: each fold's threshold is chosen on the other folds (the same rule, min-people
    included) and counted on the held-out fold only; a refused fold keeps the current threshold."""
    fold_of = assign_folds(samples, folds)
    k = min(folds, len(fold_of)) or 1
    before = {"people": 0, "people_missed": 0, "false_alerts": 0}
    after = dict(before)
    chosen: list[float | None] = []
    for fold in range(k):
        train = [s for s in samples if fold_of[s.group] != fold]
        test = [s for s in samples if fold_of[s.group] == fold]
        result = select_threshold(train, current, settings, floor=floor)
        t = result.chosen if result.status in ("recommended", "unchanged") else None
        chosen.append(t)
        for counts, threshold in ((before, current), (after, current if t is None else t)):
            p = point_at(test, threshold, settings.confidence)
            counts["people"] += p.people_kept + p.people_missed
            counts["people_missed"] += p.people_missed
            counts["false_alerts"] += p.false_alerts
    return CrossValidation(folds=k, groups=len(fold_of), thresholds=chosen, before=before, after=after)
