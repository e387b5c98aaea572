"""The cloud verifier: a stronger second look at a gateway's candidate, ending in a Verdict.

Stronger than the gateway by compute, not by a bigger download (none exists, see MODELS.md): several
frames of the segment, full resolution plus tile grids, a second architecture as a cross-check,
temporal consistency near the gateway's track, and the camera's memory of confirmed false positives.
The decision itself lives in `decision.py` as pure functions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cloud.verifier.decision import (
    Decision,
    FrameFindings,
    ModelDetection,
    TrackPrior,
    Xyxy,
    decide,
    frame_hypotheses,
    frame_tolerance,
)
from cloud.verifier.ensemble import run_ensemble
from cloud.verifier.frames import (
    ClipReadError,
    Frame,
    clip_offset,
    is_image,
    read_image,
    read_segment,
    segment_time,
    select_indices,
    track_spans,
)
from cloud.verifier.settings import VerifierSettings
from contracts import Box, Candidate, ModelRef, Verdict
from models.detector import PersonDetector
from models.fp_memory import FpMemoryStore
from models.prepare import find_prepared

if TYPE_CHECKING:
    from cloud.verifier.learned import LearnedStage

log = logging.getLogger("cloud.verifier")


def load_detectors(settings: VerifierSettings) -> dict[str, PersonDetector]:
    """Compile the ensemble's prepared models (throughput mode: the verifier keeps many tiles in flight).

    device "CPU" (or another OpenVINO device) uses OpenVINO; "cuda"/"auto" go through models.backends, which
    runs the same prepared graph in PyTorch on a GPU when one is there.
    """
    if settings.device.lower() == "auto" or settings.device.lower().startswith("cuda"):
        from models.backends import make_detector

        return {model_id: make_detector(model_id, device=settings.device, precision=settings.precision,
                                        inference_precision=settings.inference_precision,
                                        score_floor=settings.score_floor)
                for model_id in settings.models}
    return {
        model_id: PersonDetector(
            find_prepared(model_id, settings.precision), device=settings.device, mode="throughput",
            score_floor=settings.score_floor, threads=settings.threads, precision=settings.inference_precision,
        )
        for model_id in settings.models
    }


class Verifier:
    """Turns a candidate plus its clip segment (or still image) into a confirmed/rejected/uncertain verdict."""

    def __init__(
        self,
        settings: VerifierSettings | None = None,
        fp_memories: FpMemoryStore | None = None,
        detectors: Mapping[str, PersonDetector] | None = None,
        learned: LearnedStage | None = None,
    ) -> None:
        self.settings = settings or VerifierSettings()
        self.learned = learned  # the learned stage judges person/maybe/none when present
        self.fp_memories = fp_memories
        self.detectors: dict[str, PersonDetector] = dict(detectors) if detectors else load_detectors(self.settings)
        if learned is not None:
            learned.check_ensemble(list(self.detectors))
        self.model_refs: list[ModelRef] = [d.ref for d in self.detectors.values()]
        self._lock = threading.Lock()  # one verification at a time uses the compiled models' request pools

    # -- entry points ------------------------------------------------------------------------------
    def verify(self, candidate: Candidate, frames: Sequence[tuple[float, np.ndarray]]) -> Verdict:
        """Verify from decoded frames: (seconds from the segment start, BGR frame), or one still image."""
        started = time.perf_counter()
        frames = list(frames)
        if not frames:
            raise ValueError(f"event {candidate.event_id}: no frame to verify")
        for t, frame in frames:
            if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
                raise ValueError(f"event {candidate.event_id}: frame at t={t} is not a BGR image")
        if len(frames) > 1:
            offset = clip_offset(candidate)
            start, end, best = segment_time(candidate, offset)
            wanted = select_indices([t for t, _ in frames], start, end, best, self.settings.max_frames,
                                    self.settings.window_margin_s, track_spans(candidate, offset),
                                    self.settings.min_span_frames)
            frames = [frames[i] for i in wanted]
        return self._verify_frames(candidate, frames, started)

    def verify_clip(self, candidate: Candidate, clip_path: Path) -> Verdict:
        """Read the segment (a video) or the still (.jpg/.jpeg/.png) and verify it."""
        started = time.perf_counter()
        path = Path(clip_path)
        try:
            if is_image(path):
                frames = read_image(path)
            else:
                frames, _ = read_segment(path, candidate, self.settings.max_frames, self.settings.window_margin_s,
                                         self.settings.min_span_frames)
        except ClipReadError as exc:
            log.error("clip unreadable: %s", exc, extra={"event_id": candidate.event_id,
                                                         "camera_id": candidate.camera_id})
            raise
        return self._verify_frames(candidate, frames, started)

    # -- the look ----------------------------------------------------------------------------------
    def _verify_frames(self, candidate: Candidate, frames: list[Frame], started: float) -> Verdict:
        settings = self.settings
        images = [f for _, f in frames]
        grids = list(settings.tile_grids)
        # Coarse look first (full frame + the first tile grid); the finer grids only where they can still
        # change something: not when the coarse look already confirms, and only on frames without a clear
        # person. Adding scales only adds evidence, so this saves compute without changing the verdict.
        # The learned head was trained on hypotheses of every scale at once: it looks at all of them.
        coarse = grids[:1] if settings.escalate_tiles and self.learned is None else grids
        with self._lock:
            detections = run_ensemble(self.detectors, images, coarse, settings.score_floor)
        prior = self._track_prior(candidate, frames)
        findings, result = self._judge(candidate, frames, detections, prior)
        fine = grids[len(coarse):]
        looked = ["full frame", *(f"{g}x{g} tiles" for g in coarse)]
        # A confirmation carried only by the walker rule is judged on the full look: its chain of one model's
        # boxes is measured on every scale, as it would be without escalation.
        if fine and (result.decision != "confirmed" or result.by_walker):
            pending = [i for i in range(len(findings)) if i not in result.clear_frames]
            with self._lock:
                extra = run_ensemble(self.detectors, [images[i] for i in pending], fine, settings.score_floor,
                                     include_full=False)
            for i, dets in zip(pending, extra, strict=True):
                detections[i].extend(dets)
            findings, result = self._judge(candidate, frames, detections, prior)
            looked += [f"{g}x{g} tiles on {len(pending)} unclear frame(s)" for g in fine]
        verdict = self._verdict(candidate, frames, result, started, " + ".join(looked))
        log.info(
            "verdict %s score %.2f on %d frame(s)", verdict.decision, verdict.score, verdict.frames_examined,
            extra={"event_id": candidate.event_id, "camera_id": candidate.camera_id,
                   "decision": verdict.decision, "score": round(verdict.score, 4),
                   "frames_examined": verdict.frames_examined, "processing_ms": round(verdict.processing_ms, 1)},
        )
        return verdict

    def _judge(
        self, candidate: Candidate, frames: list[Frame], detections: list[list[ModelDetection]], prior: TrackPrior
    ) -> tuple[list[FrameFindings], Decision]:
        models = list(self.detectors)
        findings = [
            FrameFindings(t, frame.shape[1], frame.shape[0],
                          frame_hypotheses(dets, models, self.settings, frame.shape[0]))
            for (t, frame), dets in zip(frames, detections, strict=True)
        ]
        findings, memory_hits = self._consult_memory(candidate, frames, findings, prior)
        if self.learned is not None:
            findings = self.learned.score(frames, findings, models, self.settings)
        return findings, decide(findings, prior, self.settings, memory_hits, learned=self.learned is not None)

    def _track_prior(self, candidate: Candidate, frames: list[Frame]) -> TrackPrior:
        """The gateway's boxes, rescaled when the examined frames are not at the candidate's resolution."""
        height, width = frames[0][1].shape[:2]
        sx, sy = width / candidate.frame_width, height / candidate.frame_height
        boxes = tuple((b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy) for b in candidate.boxes if b.width > 0)
        if len(frames) == 1:
            return TrackPrior(t=0.0, boxes=boxes)  # a still: one frame, no time
        offset = clip_offset(candidate)
        # Frame time stamps and track times are rounded differently: half a frame interval either side.
        fps = candidate.clip.fps if candidate.clip is not None and candidate.clip.fps else None
        slack = 0.5 / fps if fps else frame_tolerance([t for t, _ in frames])
        spans = tuple((lo - slack, hi + slack) for lo, hi in track_spans(candidate, offset))
        return TrackPrior(t=segment_time(candidate, offset)[2], boxes=boxes, spans=spans)

    def _consult_memory(
        self, candidate: Candidate, frames: list[Frame], findings: list[FrameFindings], prior: TrackPrior
    ) -> tuple[list[FrameFindings], list[str]]:
        """The findings with the hypotheses the camera's FP memory recognises marked (`fp_entry`), and which
        gateway boxes repeat a remembered FP."""
        if self.fp_memories is None:
            return findings, []
        memory = self.fp_memories.get(candidate.camera_id)
        if not memory.entries:
            return findings, []
        threshold = self.settings.fp_match_threshold
        marked: list[FrameFindings] = []
        for (_, frame), found in zip(frames, findings, strict=True):
            hyps = []
            for hyp in found.hypotheses:
                match = memory.match(frame, hyp.box, threshold) if hyp.tier != "none" else None
                hyps.append(hyp if match is None else replace(hyp, fp_entry=match.entry_id))
            marked.append(replace(found, hypotheses=hyps))
        # The gateway's own boxes on the frame nearest its best frame: the repeat the memory exists for.
        nearest = min(range(len(frames)), key=lambda i: abs(frames[i][0] - prior.t))
        hits = []
        for box in prior.boxes:
            match = memory.match(frames[nearest][1], box, threshold)
            if match is not None:
                hits.append(
                    f"gateway box repeats the camera's remembered false positive {match.entry_id} "
                    f"(appearance similarity {match.similarity:.2f}, IoU {match.iou:.2f})"
                )
        if hits:
            log.info("candidate repeats remembered false positive(s)",
                     extra={"event_id": candidate.event_id, "camera_id": candidate.camera_id, "hits": len(hits)})
        return marked, hits

    def _verdict(
        self, candidate: Candidate, frames: list[Frame], result: Decision, started: float, scales: str
    ) -> Verdict:
        span = f"t={frames[0][0]:.1f}-{frames[-1][0]:.1f}s" if len(frames) > 1 else "still image"
        judged = f"; judged by the {self.learned.label}" if self.learned is not None else ""
        reasons = [*result.reasons,
                   f"examined {len(frames)} frame(s) ({span}) at {scales} with {', '.join(self.detectors)}{judged}"]
        return Verdict(
            event_id=candidate.event_id,
            camera_id=candidate.camera_id,
            gateway_id=candidate.gateway_id,
            decision=result.decision,
            score=result.score,
            reasons=reasons,
            boxes=[_box(xyxy, score) for xyxy, score in result.boxes],
            models=list(self.model_refs),
            frames_examined=result.frames_examined,
            verified_at=datetime.now(UTC),
            processing_ms=(time.perf_counter() - started) * 1000.0,
        )


def _box(xyxy: Xyxy, score: float) -> Box:
    x1, y1, x2, y2 = (max(0.0, float(v)) for v in xyxy)
    return Box(x1=x1, y1=y1, x2=x2, y2=y2, score=float(min(1.0, max(0.0, score))))
