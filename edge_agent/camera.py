"""One camera's first pass over one stretch of video (a clip file, or a live connection).

sample → motion gate → detect (shared detector, asynchronous) → filters → FP memory → tracker → events.

Frames are analysed in order even though inference runs asynchronously: each sampled frame waits in a
short, bounded queue until its detections (or its "no motion, not analysed" mark) are in, so the tracker
and the segment recorder see time move forward only. While the network works, this thread already
decodes, gates and tracks the next frames: the two overlap.

Announce once: a track opens an event only if it was never announced; a track that was announced and
stays in view (a standing person, a parked false positive) extends an open event but never opens a new
one, so one object is one candidate however long it stays.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from contracts import CameraConfig
from edge_agent import metrics
from edge_agent.detector_service import DetectorClient
from edge_agent.events import OpenEvent
from edge_agent.filters import DetectionFilter
from edge_agent.motion import MotionGate, MotionResult
from edge_agent.tracker import Track, Tracker
from models.detector import Detection, Region, tile_regions
from models.video import PacketBatch

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent

log = logging.getLogger("vigia.edge")

MAX_PENDING_FRAMES = 16  # frames waiting for the detector; beyond this the camera waits (back-pressure)


@dataclass
class ClipReport:
    """What one clip (or one live connection) gave. Candidates are kept only for clip files (a handful a
    minute, which evaluation reads back); a live stream keeps counts, never an unbounded list."""

    clip: str
    camera_id: str
    frames_sampled: int = 0
    detector_frames: int = 0  # sampled frames the detector looked at
    detector_calls: int = 0  # network inferences (a zoomed crop is one more)
    candidates: list = field(default_factory=list)
    candidate_count: int = 0
    dropped_tracks: int = 0
    fp_suppressed: int = 0
    error: str | None = None
    skipped: str | None = None  # why the clip was not processed (already done, camera disabled)
    keep_candidates: bool = True


@dataclass
class _Item:
    ts: float
    wall: float
    image: np.ndarray
    motion: MotionResult | None = None
    waiting: int = 0  # 0 = ready to process
    phase: str = ""  # "full" or "zoom"
    dets: list[Detection] | None = None  # None = the detector did not run
    packets: PacketBatch | None = None  # the source's packets up to this frame, for the segment (stream copy)


def zoom_regions(motion: MotionResult, width: int, height: int, limit: int = 2) -> list[Region]:
    """Square crops around small moving blobs, so a far person reaches the network large enough to see."""
    short = min(width, height)
    lo, hi = max(64, int(0.25 * short)), int(0.6 * short)
    regions: list[Region] = []
    for x, y, w, h in motion.regions:
        if w * h > 0.25 * width * height or w * h < 16:
            continue
        side = int(min(max(max(w, h) * 2.0, lo), hi))
        cx, cy = x + w / 2, y + h / 2
        rx = int(min(max(cx - side / 2, 0), width - side))
        ry = int(min(max(cy - side / 2, 0), height - side))
        regions.append((rx, ry, side, side))
        if len(regions) >= limit:
            break
    return regions


class CameraSession:
    def __init__(self, agent: EdgeAgent, camera_id: str, source: str, width: int, height: int,
                 recorder, report: ClipReport, clip_identity: str | None = None) -> None:
        self.agent = agent
        self.camera_id = camera_id
        self.source = source  # redacted
        self.width, self.height = width, height
        self.cfg: CameraConfig = agent.config.for_camera(camera_id)
        self.gate = MotionGate(self.cfg.motion)
        self.tracker = Tracker(self.cfg.tracking)
        self.filter = DetectionFilter(self.cfg.filters, width, height)
        self.recorder = recorder
        self.report = report
        self.clip_identity = clip_identity  # set for clip files: event ids then derive from it (restart-safe)
        self.client: DetectorClient = agent.shared.client()
        self.pending: deque[_Item] = deque()
        self.last_detect_ts = -1e9
        self.event: OpenEvent | None = None
        self.last_event_end = -1e9  # a split event continues from here, not from where its tracks began
        self.wall_offset = 0.0  # wall time of ts 0 (epoch seconds)
        self.recording_failed = False
        self.closed = False
        self.announced_before: list = []  # events of this clip accepted before a restart (from the ledger)

    # -- feeding ----------------------------------------------------------------------------------
    def feed(self, ts: float, wall: float, image: np.ndarray, packets: PacketBatch | None = None) -> None:
        self.wall_offset = wall - ts
        self._refresh_config()
        self.report.frames_sampled += 1
        metrics.count("FramesProcessed", self.camera_id)
        item = _Item(ts, wall, image, packets=packets)
        motion = self.gate.check(image) if self.cfg.motion.enabled else MotionResult(True, 1.0, [])
        keyframe = ts - self.last_detect_ts >= self.cfg.motion.keyframe_interval_s
        if motion.moving or keyframe:
            item.motion, item.waiting, item.phase = motion, 1, "full"
            self.last_detect_ts = ts
            self.report.detector_frames += 1
            metrics.count("DetectorCalls", self.camera_id)
            self.client.submit(image, item, floor=self.cfg.detect_threshold)
        self.pending.append(item)
        self._advance()
        while len(self.pending) > MAX_PENDING_FRAMES:
            self.client.wait_head(timeout=30)
            self._advance()

    def close(self) -> None:
        """Finish every frame in flight, close the tracks and the open event."""
        if self.closed:
            return
        self.closed = True
        while self.pending:
            self.client.wait_head(timeout=30)
            self._advance()
        for track in self.tracker.close_all():
            self._log_dropped(track)
        if self.event is not None:
            self._close_event()

    def _advance(self) -> None:
        self._collect()
        while self.pending and self.pending[0].waiting == 0:
            self._analyse(self.pending.popleft())

    def _collect(self) -> None:
        for item, dets in self.client.ready():
            if item.phase == "full":
                item.dets = dets
                zoom = self._zoom_for(item, dets)
                if zoom:
                    item.phase = "zoom"
                    self.client.submit(item.image, item, regions=zoom, floor=self.cfg.detect_threshold)
                    continue
            else:
                item.dets = self.agent.detector.merge([item.dets or [], dets])
            item.waiting = 0

    def _zoom_for(self, item: _Item, dets: list[Detection]) -> list[Region]:
        """'auto' tiling: zoom on small motion only where the full frame saw nobody (keeps throughput)."""
        if self.cfg.tiling == "off" or item.motion is None:
            return []
        if self.cfg.tiling == "always":
            return tile_regions(self.width, self.height)
        if any(d.score >= self.cfg.detect_threshold for d in dets):
            return []
        return zoom_regions(item.motion, self.width, self.height)

    def _refresh_config(self) -> None:
        cfg = self.agent.config.for_camera(self.camera_id)
        if cfg is self.cfg:
            return
        self.cfg = cfg
        self.gate.update_settings(cfg.motion)
        self.tracker.settings = cfg.tracking
        self.filter = DetectionFilter(cfg.filters, self.width, self.height)

    # -- analysis ---------------------------------------------------------------------------------
    def _analyse(self, item: _Item) -> None:
        self._record(item)
        kept: list[Detection] = []
        if item.dets is None:
            closed: list[Track] = []  # the motion gate skipped this frame: nothing moved, no track has left
        else:
            memory = self.agent.fp_memories.get(self.camera_id)
            for verdict in self.filter.apply(item.dets, self.cfg.detect_threshold):
                if not verdict.kept:
                    continue
                match = memory.match(item.image, verdict.detection.as_xyxy(), self.cfg.fp_match_threshold)
                if match:
                    self.report.fp_suppressed += 1
                    metrics.count("Suppressed", self.camera_id, rule="fp_memory")
                    log.info("detection matches a known false positive", extra={
                        "decision": "suppressed", "camera_id": self.camera_id, "ts": round(item.ts, 2),
                        "fp_entry": match.entry_id, "similarity": round(match.similarity, 3),
                        "score": round(verdict.detection.score, 3)})
                    continue
                kept.append(verdict.detection)
            closed = self.tracker.update(item.ts, kept)
        for track in closed:
            self._log_dropped(track)
        # Only tracks seen in this frame open or extend an event: a track kept alive across frames the
        # detector skipped must not hold an event open by itself.
        seen_now = [t for t in self.tracker.active if t.last_ts == item.ts and self._qualifies(t)]
        fresh = [t for t in seen_now if not t.announced]
        if self.event is None and fresh:
            start = max(min(t.first_ts for t in fresh), self.last_event_end)
            self._open_event(start, item.ts)
        if self.event is not None and seen_now:
            for track in seen_now:
                self.event.tracks[track.track_id] = track
                track.announced = True
            self.event.last_ts = item.ts
            self.event.offer_frame(item.ts, item.image, max(t.last.det.score for t in seen_now), kept)
        if self.event is not None:
            t = self.cfg.tracking
            if item.ts - self.event.last_ts > t.event_gap_s or item.ts - self.event.start_ts >= t.max_event_s:
                self._close_event()

    def _record(self, item: _Item) -> None:
        if self.recording_failed and self.recorder.recording:
            return
        try:
            self.recorder.push(item.ts, item.image, item.packets)
        except OSError as exc:
            self._recording_error(exc)

    def _recording_error(self, exc: OSError) -> None:
        if not self.recording_failed:
            log.error("clip segment cannot be written; the event is still sent, without its clip", extra={
                "camera_id": self.camera_id, "event_id": self.event.event_id if self.event else None,
                "error": str(exc)})
        self.recording_failed = True

    def _qualifies(self, track: Track) -> bool:
        ok, _ = self.tracker.qualifies(track, self.cfg.threshold)
        if not ok:
            return False
        if track.displacement() < self.cfg.tracking.stationary_px:
            box = self.norm(track.last.det)
            earlier = self.agent.stationary.seen(self.camera_id, box, self.cfg.tracking.stationary_ttl_s)
            if earlier and not track.announced:
                if not track.suppressed_logged:
                    track.suppressed_logged = True
                    metrics.count("Suppressed", self.camera_id, rule="stationary")
                    log.info("stationary object already announced", extra={
                        "decision": "suppressed", "camera_id": self.camera_id, "track_id": track.track_id,
                        "announced_by": earlier})
                return False
        return True

    def _log_dropped(self, track: Track) -> None:
        if track.announced:
            return
        self.report.dropped_tracks += 1
        _, why = self.tracker.qualifies(track, self.cfg.threshold)
        metrics.count("Dropped", self.camera_id, reason=metrics.dropped_rule(why))
        level = logging.INFO if track.hits >= 2 else logging.DEBUG
        log.log(level, "track dropped", extra={
            "decision": "dropped", "camera_id": self.camera_id, "track_id": track.track_id, "reason": why,
            "hits": track.hits, "first_ts": round(track.first_ts, 2), "last_ts": round(track.last_ts, 2),
            "score_max": round(track.score_max, 3)})

    # -- events -----------------------------------------------------------------------------------
    def _open_event(self, start: float, ts: float) -> None:
        event_id = self.agent.event_id_for(self, start)
        self.event = OpenEvent(event_id, start, ts)
        self.recording_failed = False
        try:
            self.recorder.start(event_id)
        except OSError as exc:
            self._recording_error(exc)
        except RuntimeError as exc:  # no pre-roll frame yet: the clip starts with the next frame
            log.debug("segment not started", extra={"camera_id": self.camera_id, "error": str(exc)})

    def _close_event(self) -> None:
        event, self.event = self.event, None
        assert event is not None
        self.last_event_end = event.last_ts
        clip_ref, clip_error = None, None
        if self.recorder.recording:
            try:
                clip_ref = self.recorder.finish()
            except (OSError, RuntimeError) as exc:
                clip_error = str(exc)
                self._recording_error(exc if isinstance(exc, OSError) else OSError(str(exc)))
        elif self.recording_failed:
            clip_error = "the clip segment could not be written"
        self.agent.close_event(self, event, clip_ref, clip_error)

    def norm(self, det: Detection) -> tuple[float, float, float, float]:
        return (det.x1 / self.width, det.y1 / self.height, det.x2 / self.width, det.y2 / self.height)
