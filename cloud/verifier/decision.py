"""The verifier's decision as pure functions of per-frame detections: no models, no images, no clocks.

Three steps, each testable with a handful of hand-written detections:

1. `group_detections`: detections of every model at every scale (full frame, tile grids) that overlap
   become one object hypothesis.
2. `score_hypothesis`: one calibrated person score per hypothesis. Two architectures agreeing at the same
   place is the strong evidence (geometric mean of their scores); a score only one model gives is
   discounted, and discounted again when it does not hold across scales.
3. `decide`: temporal consistency over the examined frames, near the gateway's track, minus what the
   camera's false-positive memory recognised. The support needed is relative to the frames examined
   inside the gateway's track spans; a small person only one architecture sees counts when that model
   follows it walking consistently over several frames (`find_walker`).

Pure means pure: no function here changes its arguments. `decide` judges copies of the hypotheses, so the
same findings give the same verdict however often they are judged, and returns what the caller needs to
know about each frame (`Decision.clear_frames`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from cloud.verifier.settings import VerifierSettings
from models.geometry import Xyxy, iou

Span = tuple[float, float]  # [start, end] in seconds from the segment start
Tier = Literal["person", "maybe", "none"]
FULL_SCALE = "full"


def scale_name(grid: int) -> str:
    return f"{grid}x{grid}"


@dataclass(frozen=True, slots=True)
class ModelDetection:
    """One detection of one model at one scale, in frame pixels."""

    model: str
    scale: str  # "full" or "2x2", "3x3", ...
    box: Xyxy
    score: float

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]


@dataclass(slots=True)
class Hypothesis:
    """Overlapping detections taken to be one object."""

    box: Xyxy
    members: list[ModelDetection] = field(default_factory=list)
    evidence: float = 0.0
    tier: Tier = "none"
    explanation: str = ""
    fp_entry: str | None = None  # set when the camera's FP memory recognised it
    near_track: bool = True
    walking: bool = False  # a clear person only because the walker rule counted it
    learned: float | None = None  # P(person) from the learned stage's head, when it ran on this hypothesis

    def best(self, model: str) -> float:
        return max((d.score for d in self.members if d.model == model), default=0.0)

    def scales(self, model: str, min_score: float) -> set[str]:
        return {d.scale for d in self.members if d.model == model and d.score >= min_score}


@dataclass(slots=True)
class FrameFindings:
    """What the ensemble found on one examined frame."""

    t: float  # seconds from the segment start
    width: int
    height: int
    hypotheses: list[Hypothesis]


@dataclass(frozen=True, slots=True)
class TrackPrior:
    """Where the gateway saw the person: its boxes on its best frame, at segment time `t`, and when: the
    union of its tracks' spans in segment time (empty for a still, or when unknown)."""

    t: float
    boxes: tuple[Xyxy, ...]
    spans: tuple[Span, ...] = ()


@dataclass(frozen=True, slots=True)
class Walker:
    """One model's detections near the track that move like a person walking."""

    model: str
    frames: tuple[int, ...]  # indices into the examined frames
    boxes: tuple[Xyxy, ...]
    mean_score: float
    displacement: float  # net centre travel, in (median) box heights
    straightness: float  # net travel / path length, 1 = a straight line

    def describe(self) -> str:
        return (f"one model sees a person walking {self.displacement:.1f} box heights over {len(self.frames)} "
                f"frames ({self.model} mean {self.mean_score:.2f}, straightness {self.straightness:.2f})")


@dataclass(slots=True)
class Decision:
    decision: Literal["confirmed", "rejected", "uncertain"]
    score: float
    reasons: list[str]
    best_frame: int | None  # index into the frames list of the frame that carries the verdict's boxes
    boxes: list[tuple[Xyxy, float]]
    person_frames: int
    frames_examined: int
    by_walker: bool = False  # confirmed only because of the walker rule
    # Indices of the examined frames that show a clear person on their own: near the track, not a
    # remembered false positive, not only by the walker rule. Finer tiles cannot change those frames.
    clear_frames: tuple[int, ...] = ()


# -- step 1: grouping ---------------------------------------------------------------------------------
def plausible(det: ModelDetection, settings: VerifierSettings) -> bool:
    """Box geometry sanity: a person is not a 2-pixel sliver, a flat strip or a needle."""
    if det.score < settings.score_floor or det.width <= 0 or det.height < settings.min_box_height_px:
        return False
    aspect = det.height / det.width
    return settings.min_aspect <= aspect <= settings.max_aspect


def group_detections(detections: Sequence[ModelDetection], settings: VerifierSettings) -> list[Hypothesis]:
    """Greedy grouping, strongest first: each detection joins the first hypothesis whose anchor it overlaps."""
    groups: list[Hypothesis] = []
    for det in sorted((d for d in detections if plausible(d, settings)), key=lambda d: -d.score):
        for group in groups:
            if iou(group.box, det.box) >= settings.group_iou:
                group.members.append(det)
                break
        else:
            groups.append(Hypothesis(box=det.box, members=[det]))
    return groups


# -- step 2: evidence -----------------------------------------------------------------------------------
def agreement(hyp: Hypothesis, a: str, b: str, settings: VerifierSettings) -> tuple[float, float] | None:
    """The best pair of scores of models a and b on matching boxes (IoU >= agree_iou), both >= cross_check_min."""
    best: tuple[float, float] | None = None
    floor = settings.cross_check_min
    for da in (d for d in hyp.members if d.model == a and d.score >= floor):
        for db in (d for d in hyp.members if d.model == b and d.score >= floor):
            if iou(da.box, db.box) >= settings.agree_iou and (best is None or da.score * db.score > best[0] * best[1]):
                best = (da.score, db.score)
    return best


def score_hypothesis(
    hyp: Hypothesis, models: Sequence[str], settings: VerifierSettings, frame_height: float | None = None
) -> Hypothesis:
    """A copy of the hypothesis with its calibrated evidence, its tier and a one-line explanation."""
    floor = settings.cross_check_min
    best = {m: hyp.best(m) for m in models}
    candidates: list[tuple[float, str]] = []
    # Agreement of two architectures: their errors are largely independent (a dog that fools the COCO
    # model rarely fools the person-only one), so the geometric mean is not discounted.
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            pair = agreement(hyp, a, b, settings)
            if pair is not None:
                sa, sb = pair
                first, second = (a, b) if sa >= sb else (b, a)
                hi, lo = max(sa, sb), min(sa, sb)
                candidates.append((math.sqrt(sa * sb), f"{first} {hi:.2f} and {second} {lo:.2f} agree"))
    # One model alone: discounted, and more when it does not hold at several scales (a texture that looks
    # like a person at one zoom usually stops doing so at another).
    for m in models:
        if best[m] <= 0:
            continue
        scales = hyp.scales(m, floor)
        n_scales = len(scales)
        weight = settings.single_model_weight
        tall = frame_height is not None and (hyp.box[3] - hyp.box[1]) > settings.tile_only_max_height * frame_height
        tile_only = tall and FULL_SCALE not in scales
        if n_scales < settings.min_scales or tile_only:
            weight *= settings.unconfirmed_scale_weight
        others = [o for o in models if o != m]
        other_txt = f", {', '.join(f'{o} {best[o]:.2f}' for o in others)}" if others else ""
        candidates.append(
            (weight * best[m],
             f"{m} {best[m]:.2f} alone (>= {floor:.2f} at {n_scales} scale(s)"
             f"{', tiles only' if tile_only else ''}){other_txt}")
        )
    if not candidates:
        return replace(hyp, evidence=0.0, tier="none", explanation="no detection")
    evidence, explanation = max(candidates, key=lambda c: c[0])
    evidence = min(1.0, evidence)
    tier: Tier = "none"
    if evidence >= settings.confirm_threshold:
        tier = "person"
    elif evidence >= settings.uncertain_threshold:
        tier = "maybe"
    return replace(hyp, evidence=evidence, tier=tier, explanation=explanation)


def frame_hypotheses(
    detections: Sequence[ModelDetection], models: Sequence[str], settings: VerifierSettings,
    frame_height: float | None = None,
) -> list[Hypothesis]:
    """Steps 1 and 2 for one frame, strongest first."""
    hyps = [score_hypothesis(h, models, settings, frame_height) for h in group_detections(detections, settings)]
    return sorted(hyps, key=lambda h: -h.evidence)


# -- step 3: temporal decision --------------------------------------------------------------------------
def frame_tolerance(timestamps: Sequence[float]) -> float:
    """Half the typical frame interval: frame time stamps and track times are rounded differently."""
    steps = sorted(b - a for a, b in itertools.pairwise(timestamps) if b > a)
    return 0.5 * steps[len(steps) // 2] if steps else 1e-6


def in_spans(t: float, spans: Sequence[Span], tolerance: float = 1e-6) -> bool:
    return any(lo - tolerance <= t <= hi + tolerance for lo, hi in spans)


def span_distance(t: float, spans: Sequence[Span]) -> float:
    """Seconds from t to the nearest span (0 inside one)."""
    return min(max(lo - t, 0.0, t - hi) for lo, hi in spans)


def frames_in_spans(frames: Sequence[FrameFindings], spans: Sequence[Span]) -> int:
    """Examined frames inside the gateway's track spans; all of them when there are no spans, or none inside
    (offsets that do not match the segment) -- the rule then falls back to the whole examined set."""
    if len(frames) <= 1 or not spans:
        return len(frames)
    return sum(1 for f in frames if in_spans(f.t, spans)) or len(frames)


def _centre(box: Xyxy) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def find_walker(
    frames: Sequence[FrameFindings], counted: Sequence[Sequence[Hypothesis]], settings: VerifierSettings
) -> Walker | None:
    """A person only one architecture sees, corroborated by motion instead of by the second model.

    For each model, its strongest detection (>= cross_check_min) among the counted hypotheses (near the
    track, not a remembered false positive) of each examined frame. It is a walker when it is found on at
    least `walker_min_frames` frames, its box height stays within `walker_max_size_ratio` of the median, its centre
    travels at least `walker_min_displacement` box heights net, along a roughly straight path (net / path
    >= `walker_min_straightness`), no faster than `walker_max_speed` box heights per second, and the
    model's mean score is at least `walker_min_score`. Flags, foliage and IR noise blink or sway in place;
    a parked car does not move; a still has one frame and can never qualify.
    """
    if len(frames) < settings.walker_min_frames:
        return None
    models = sorted({d.model for hyps in counted for h in hyps for d in h.members})
    best: Walker | None = None
    for model in models:
        chain: list[tuple[int, ModelDetection]] = []
        for index, hyps in enumerate(counted):
            dets = [d for h in hyps for d in h.members if d.model == model and d.score >= settings.cross_check_min]
            if dets:
                chain.append((index, max(dets, key=lambda d: d.score)))
        if len(chain) < settings.walker_min_frames:
            continue
        heights = sorted(d.height for _, d in chain)
        height = heights[len(heights) // 2]
        ratio = settings.walker_max_size_ratio
        if heights[0] <= 0 or heights[-1] > ratio * height or heights[0] * ratio < height:
            continue
        centres = [_centre(d.box) for _, d in chain]
        net = math.dist(centres[0], centres[-1])
        path = sum(math.dist(a, b) for a, b in itertools.pairwise(centres))
        duration = frames[chain[-1][0]].t - frames[chain[0][0]].t
        displacement = net / height
        straightness = net / path if path > 0 else 0.0
        mean_score = sum(d.score for _, d in chain) / len(chain)
        if (
            displacement < settings.walker_min_displacement
            or straightness < settings.walker_min_straightness
            or duration <= 0
            or displacement / duration > settings.walker_max_speed
            or mean_score < settings.walker_min_score
        ):
            continue
        walker = Walker(model, tuple(i for i, _ in chain), tuple(d.box for _, d in chain), mean_score,
                        displacement, straightness)
        if best is None or (len(walker.frames), walker.mean_score) > (len(best.frames), best.mean_score):
            best = walker
    return best


def near_track(box: Xyxy, t: float, prior: TrackPrior | None, settings: VerifierSettings) -> bool:
    """Is the box's centre within reach of the gateway's boxes, given the time between the two frames?"""
    if prior is None or not prior.boxes or not settings.track_gate:
        return True
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for x1, y1, x2, y2 in prior.boxes:
        reach = max(y2 - y1, box[3] - box[1]) * (settings.track_margin + settings.track_speed * abs(t - prior.t))
        if x1 - reach <= cx <= x2 + reach and y1 - reach <= cy <= y2 + reach:
            return True
    return False


def self_prior(frames: Sequence[FrameFindings]) -> TrackPrior | None:
    """Without the gateway's boxes, the strongest hypothesis anchors the track: frames must then agree on
    one object, not on scattered blips (a flag that looks like a person here, then there)."""
    best: tuple[float, float, Xyxy] | None = None
    for frame in frames:
        for hyp in frame.hypotheses:
            if hyp.fp_entry is None and (best is None or hyp.evidence > best[0]):
                best = (hyp.evidence, frame.t, hyp.box)
    return TrackPrior(best[1], (best[2],)) if best is not None else None


def required_frames(examined: int, settings: VerifierSettings) -> int:
    """Frames that must show a person: a still needs its one frame; a clip needs a share of them."""
    need = max(settings.min_person_frames, math.ceil(settings.min_person_fraction * examined))
    return max(1, min(examined, need))


def learned_tiers(frames: Sequence[FrameFindings], settings: VerifierSettings) -> list[FrameFindings]:
    """Copies of the frames as the learned head judges them (`settings.learned_mode`).

    judge: tier and evidence from P(person) alone; a hypothesis the head did not score is nothing.
    veto: the rules' tiers stand, except that a hypothesis the head finds unlike a person (P below
    `learned_veto`) is removed (no tier, no walker chain), and one it is sure of is a
    person even where the rules hesitate (P >= `learned_promote`: a small far person only one model sees).
    """
    out = []
    for frame in frames:
        hyps = []
        for hyp in frame.hypotheses:
            p = hyp.learned if hyp.learned is not None else 0.0
            if settings.learned_mode == "veto":
                if hyp.learned is not None and p < settings.learned_veto:
                    continue
                if p >= settings.learned_promote and hyp.tier != "person":
                    hyps.append(replace(hyp, members=list(hyp.members), evidence=max(hyp.evidence, p), tier="person",
                                        explanation=f"learned head P(person) {p:.2f} over [{hyp.explanation}]"))
                else:
                    hyps.append(replace(hyp, members=list(hyp.members)))
                continue
            tier: Tier = ("person" if p >= settings.learned_person
                          else "maybe" if p >= settings.learned_maybe else "none")
            hyps.append(replace(hyp, members=list(hyp.members), evidence=p, tier=tier,
                                explanation=f"learned head P(person) {p:.2f} [{hyp.explanation}]"))
        out.append(replace(frame, hypotheses=sorted(hyps, key=lambda h: -h.evidence)))
    return out


def decide(
    frames: Sequence[FrameFindings], prior: TrackPrior | None, settings: VerifierSettings,
    memory_hits: Sequence[str] = (), learned: bool = False,
) -> Decision:
    """Confirmed when enough examined frames show a person near the track; uncertain on half that support.

    A clear person frame counts 1, a 'maybe' frame `maybe_frame_weight`; confirming also needs
    `min_person_frames` clear frames (one for a still). The frames needed are a share of the examined
    frames inside the gateway's track spans (`prior.spans`), not of every examined frame: margin frames
    where the person is not there yet can add support but do not raise the bar. The frames of a
    consistent walker (`find_walker`) count as clear frames.

    `memory_hits` are descriptions of the camera's remembered false positives that the gateway's own boxes
    repeat; hypotheses the memory recognised carry `fp_entry` and do not count as persons.

    Nothing passed in is changed: the track gate and the walker rule mark copies of the hypotheses.
    """
    n = len(frames)
    if n == 0:
        return Decision("rejected", 0.0, ["no frame could be examined"], None, [], 0, 0)
    if learned:
        frames = learned_tiers(frames, settings)
    else:
        frames = [replace(f, hypotheses=[replace(h, members=list(h.members)) for h in f.hypotheses]) for f in frames]
    spans = prior.spans if prior is not None else ()
    if (prior is None or not prior.boxes) and settings.track_gate:
        prior = self_prior(frames)
        if prior is not None:
            prior = TrackPrior(prior.t, prior.boxes, spans)
    in_span = frames_in_spans(frames, spans)
    need = required_frames(in_span, settings)
    frame_scores: list[float] = []
    support = 0.0
    person_frames = 0
    away = 0
    recognised: dict[str, int] = {}
    best_hyp: list[Hypothesis | None] = []
    counted_per_frame: list[list[Hypothesis]] = []
    for frame in frames:
        counted: list[Hypothesis] = []
        for hyp in frame.hypotheses:
            hyp.near_track = near_track(hyp.box, frame.t, prior, settings)
            if hyp.fp_entry is not None:
                recognised[hyp.fp_entry] = recognised.get(hyp.fp_entry, 0) + 1
            elif not hyp.near_track:
                away += hyp.tier == "person"
            else:
                counted.append(hyp)
        counted_per_frame.append(counted)
    # The learned head replaces the walker rule: it was trained on the walking animals the rule confirmed.
    walker_on = settings.walker_rule and not (learned and settings.learned_mode == "judge")
    walker = find_walker(frames, counted_per_frame, settings) if walker_on else None
    if walker is not None:
        # Motion corroborates the one model instead of the second architecture: on the walker's frames its
        # hypothesis counts as a clear person, at the model's mean score over the walk.
        for index, box in zip(walker.frames, walker.boxes, strict=True):
            for hyp in counted_per_frame[index]:
                if any(d.box == box and d.model == walker.model for d in hyp.members):
                    hyp.walking = hyp.tier != "person"
                    hyp.evidence = max(hyp.evidence, walker.mean_score)
                    hyp.tier = "person"
                    hyp.explanation = walker.describe()
                    break
    own_person_frames, own_support = 0, 0.0  # what the frames show without the walker rule
    clear_frames: list[int] = []
    for index, counted in enumerate(counted_per_frame):
        own = max((h for h in counted if not h.walking), key=lambda h: h.evidence, default=None)
        if own is not None and own.tier == "person":
            own_person_frames, own_support = own_person_frames + 1, own_support + 1.0
            clear_frames.append(index)
        elif own is not None and own.tier == "maybe":
            own_support += settings.maybe_frame_weight
        top = max(counted, key=lambda h: h.evidence, default=None)
        best_hyp.append(top)
        score = top.evidence if top else 0.0
        frame_scores.append(score)
        if top is not None and top.tier == "person":
            person_frames += 1
            support += 1.0
        elif top is not None and top.tier == "maybe":
            support += settings.maybe_frame_weight

    # The event's score is what the temporal rule needed: the mean of the `need` best frames.
    event_score = sum(sorted(frame_scores, reverse=True)[:need]) / need
    best_index = max(range(n), key=lambda i: frame_scores[i])
    reasons: list[str] = []
    maybe_frames = sum(1 for h in best_hyp if h is not None and h.tier == "maybe")
    scope = f"{in_span} examined in the track's span" if in_span < n else f"{n} examined"
    # Temporal consistency: enough support over the examined frames, and some frames clear on their own
    # (a consistent 'maybe' alone, such as a dog the COCO model half believes, goes to review instead).
    if person_frames >= min(need, settings.min_person_frames) and support >= need:
        decision: Literal["confirmed", "rejected", "uncertain"] = "confirmed"
        top = best_hyp[best_index]
        reasons.append(
            f"person on {person_frames}/{n} examined frame(s) near the track"
            + (f" (+{maybe_frames} likely)" if maybe_frames and person_frames < need else "")
            + f", needed {need} ({scope})"
        )
        if walker is not None:
            reasons.append(walker.describe())
        if top is not None:
            reasons.append(f"best: {top.explanation} -> {top.evidence:.2f} at t={frames[best_index].t:.1f}s")
    else:
        decision = "uncertain" if support >= need / 2 else "rejected"
        reasons.append(
            f"person on {person_frames}/{n} examined frame(s) near the track"
            + (f" (+{maybe_frames} likely)" if maybe_frames else "")
            + f", {need} needed ({scope})"
        )
        top = best_hyp[best_index]
        if top is not None and top.evidence > 0:
            reasons.append(
                f"strongest: {top.explanation} -> {top.evidence:.2f} (confirm at {settings.confirm_threshold:.2f})"
            )
        else:
            reasons.append("no person-like detection near the track on any frame")
        if recognised or memory_hits:
            decision = "rejected"
            event_score = min(event_score, settings.uncertain_threshold / 2)
    for entry, count in recognised.items():
        reasons.append(f"camera's false-positive memory recognised entry {entry} on {count} frame(s); not counted")
    reasons.extend(memory_hits)
    if away:
        reasons.append(f"{away} person-like detection(s) away from the gateway's track not counted")

    boxes: list[tuple[Xyxy, float]] = []
    if decision != "rejected":
        tiers = ("person",) if decision == "confirmed" else ("person", "maybe")
        boxes = [
            (h.box, h.evidence)
            for h in frames[best_index].hypotheses
            if h.tier in tiers and h.near_track and h.fp_entry is None
        ]
    by_walker = decision == "confirmed" and not (
        own_person_frames >= min(need, settings.min_person_frames) and own_support >= need)
    return Decision(decision, float(min(1.0, max(0.0, event_score))), reasons, best_index, boxes, person_frames, n,
                    by_walker, tuple(clear_frames))
