"""The evaluation gate: a new version replaces the current one only when it is better on the same footage.

Rule (`gate(candidate, current)`): both summaries must come from the same dataset (`dataset_sha256`), the same
protocol and the same counts of people, empty images and person intervals; then the candidate passes only when
its image recall and clip interval recall are not lower, its false alarms and false events not higher, and it is
strictly better somewhere (fewer false alarms + false events, or a higher recall). A tie is refused: a new version
costs a rollout, so it has to earn it.
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)
REPORT_JSON = "gate.json"
REPORT_PNG = "gate.png"


class ImageCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hits: int = Field(ge=0, description="labeled people found in stills")
    n_person: int = Field(ge=1, description="labeled people in stills")
    false_alarms: int = Field(ge=0, description="alarms on stills without a person")
    n_empty: int = Field(ge=0, description="stills without a person")

    @model_validator(mode="after")
    def _hits_bounded(self) -> ImageCounts:
        if self.hits > self.n_person:
            raise ValueError(f"images.hits {self.hits} exceeds images.n_person {self.n_person}")
        return self


class ClipCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intervals_hit: int = Field(ge=0, description="labeled person intervals with an event")
    intervals_total: int = Field(ge=1, description="labeled person intervals")
    false_events: int = Field(ge=0, description="events outside every person interval")

    @model_validator(mode="after")
    def _hits_bounded(self) -> ClipCounts:
        if self.intervals_hit > self.intervals_total:
            raise ValueError(f"clips.intervals_hit {self.intervals_hit} exceeds intervals_total "
                             f"{self.intervals_total}")
        return self


class ClipResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(min_length=1)
    intervals_hit: int = Field(ge=0)
    intervals_total: int = Field(ge=0)
    false_events: int = Field(ge=0)


class EvalSummary(BaseModel):
    """What `vigia train` stores in a version's metrics["eval"] (and what a rules-only baseline looks like).

    Extra top-level keys are ignored, so the evaluation can add fields without breaking stored versions.
    """

    model_config = ConfigDict(extra="ignore")

    label: str = Field(min_length=1, description="a version ('1.1.0') or 'rules'")
    dataset_sha256: str = Field(min_length=1, description="the training-data hash the evaluation ran on")
    images: ImageCounts
    clips: ClipCounts
    per_clip: list[ClipResult] | None = None
    protocol: str = Field(min_length=1, description="e.g. 'leave-clips-out, 5 folds, seed 0'")

    @property
    def image_recall(self) -> Fraction:
        return Fraction(self.images.hits, self.images.n_person)

    @property
    def clip_recall(self) -> Fraction:
        return Fraction(self.clips.intervals_hit, self.clips.intervals_total)


class GateResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: bool
    reasons: list[str]
    deltas: dict[str, float | int]


def _pct(value: Fraction) -> str:
    return f"{float(value) * 100:.1f} %"


def gate(candidate: EvalSummary, current: EvalSummary) -> GateResult:
    """Pure: the verdict, one sentence with the numbers per reason, and candidate-minus-current deltas."""
    c, k = candidate, current
    refusals: list[str] = []
    if c.dataset_sha256 != k.dataset_sha256:
        refusals.append(f"{c.label} was evaluated on dataset {c.dataset_sha256[:12]} and {k.label} on "
                        f"{k.dataset_sha256[:12]}: they cannot be compared.")
    if c.protocol != k.protocol:
        refusals.append(f"{c.label} was evaluated with protocol '{c.protocol}' and {k.label} with "
                        f"'{k.protocol}': they cannot be compared.")
    for what, a, b in (("people in stills", c.images.n_person, k.images.n_person),
                       ("stills without a person", c.images.n_empty, k.images.n_empty),
                       ("person intervals", c.clips.intervals_total, k.clips.intervals_total)):
        if a != b:
            refusals.append(f"{c.label} was scored on {a} {what} and {k.label} on {b}: not the same footage.")
    deltas: dict[str, float | int] = {
        "image_recall": round(float(c.image_recall - k.image_recall), 6),
        "clip_recall": round(float(c.clip_recall - k.clip_recall), 6),
        "false_alarms": c.images.false_alarms - k.images.false_alarms,
        "false_events": c.clips.false_events - k.clips.false_events,
    }
    if refusals:
        log.info("gate refused: not comparable", extra={"candidate": c.label, "current": k.label})
        return GateResult(passed=False, reasons=refusals, deltas=deltas)

    if c.image_recall < k.image_recall:
        refusals.append(f"Image recall fell from {k.images.hits}/{k.images.n_person} ({_pct(k.image_recall)}) "
                        f"to {c.images.hits}/{c.images.n_person} ({_pct(c.image_recall)}).")
    if c.clip_recall < k.clip_recall:
        refusals.append(f"Clip interval recall fell from {k.clips.intervals_hit}/{k.clips.intervals_total} to "
                        f"{c.clips.intervals_hit}/{c.clips.intervals_total}.")
    if c.images.false_alarms > k.images.false_alarms:
        refusals.append(f"False alarms on stills rose from {k.images.false_alarms} to {c.images.false_alarms} "
                        f"(of {c.images.n_empty} stills without a person).")
    if c.clips.false_events > k.clips.false_events:
        refusals.append(f"False events on clips rose from {k.clips.false_events} to {c.clips.false_events}.")

    false_c = c.images.false_alarms + c.clips.false_events
    false_k = k.images.false_alarms + k.clips.false_events
    gains: list[str] = []
    if false_c < false_k:
        gains.append(f"False alarms + false events fell from {false_k} ({k.images.false_alarms} + "
                     f"{k.clips.false_events}) to {false_c} ({c.images.false_alarms} + {c.clips.false_events}).")
    if c.image_recall > k.image_recall:
        gains.append(f"Image recall rose from {k.images.hits}/{k.images.n_person} to "
                     f"{c.images.hits}/{c.images.n_person}.")
    if c.clip_recall > k.clip_recall:
        gains.append(f"Clip interval recall rose from {k.clips.intervals_hit}/{k.clips.intervals_total} to "
                     f"{c.clips.intervals_hit}/{c.clips.intervals_total}.")
    if refusals:
        return GateResult(passed=False, reasons=refusals, deltas=deltas)
    if not gains:
        return GateResult(passed=False, deltas=deltas, reasons=[
            f"{c.label} ties {k.label}: image recall {c.images.hits}/{c.images.n_person}, clip interval recall "
            f"{c.clips.intervals_hit}/{c.clips.intervals_total}, {c.images.false_alarms} false alarms and "
            f"{c.clips.false_events} false events for both; a new version must be better somewhere."])
    held = (f"Nothing got worse: image recall {c.images.hits}/{c.images.n_person} (was {k.images.hits}), clip "
            f"interval recall {c.clips.intervals_hit}/{c.clips.intervals_total} (was {k.clips.intervals_hit}), "
            f"{c.images.false_alarms} false alarms (was {k.images.false_alarms}), {c.clips.false_events} false "
            f"events (was {k.clips.false_events}).")
    return GateResult(passed=True, reasons=[*gains, held], deltas=deltas)


def load_summary(path: Path) -> EvalSummary:
    """An evaluation summary from a JSON file; a clear error names the file."""
    try:
        return EvalSummary.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise
    except ValueError as exc:
        raise ValueError(f"{path}: not an evaluation summary: {exc}") from exc


def write_report(result: GateResult, candidate: EvalSummary, current: EvalSummary, out_dir: Path) -> Path:
    """gate.json (verdict, reasons, deltas, both summaries) and gate.png beside it; returns the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "passed": result.passed, "reasons": result.reasons, "deltas": result.deltas,
        "candidate": candidate.model_dump(mode="json"), "current": current.model_dump(mode="json"),
        "plot": REPORT_PNG,
    }
    path = out_dir / REPORT_JSON
    path.write_text(json.dumps(report, indent=2) + "\n")
    from models.learned.gate_plot import plot_gate

    plot_gate(result, candidate, current, out_dir / REPORT_PNG)
    log.info("gate report written", extra={"path": str(path), "passed": result.passed})
    return path
