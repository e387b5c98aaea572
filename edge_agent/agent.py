"""The gateway's first pass: sample → motion gate → detect (async) → filters → FP memory → tracker → events.

Frames are analysed in order even though inference runs asynchronously: each sampled frame waits in a
short queue until its detections (or its "no motion, not analysed" mark) are in, so the tracker and the
segment recorder see time move forward only. The detector's throughput is the limit, not the plumbing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from contracts import Box, CameraConfig, Candidate, ClipRef, TrackStats, new_event_id
from edge_agent.config_provider import ConfigProvider
from edge_agent.events import OpenEvent, encode_snapshot
from edge_agent.filters import DetectionFilter
from edge_agent.motion import MotionGate, MotionResult
from edge_agent.outbox import Outbox
from edge_agent.publisher import put_candidate
from edge_agent.segments import SegmentRecorder, SourceClipRecorder
from edge_agent.settings import AgentSettings
from edge_agent.sources import SourceError, iter_clip_uris, open_clip
from edge_agent.stationary import StationaryRegistry
from edge_agent.tracker import Track, Tracker
from models.detector import Detection, PersonDetector, Region, tile_regions
from models.fp_memory import FpMemoryStore

log = logging.getLogger("vigia.edge")

MAX_TRACKS_IN_MESSAGE = 32


@dataclass
class ClipReport:
    clip: str
    camera_id: str
    frames_sampled: int = 0
    detector_frames: int = 0  # sampled frames the detector looked at
    detector_calls: int = 0  # network inferences (a zoomed crop is one more)
    candidates: list[Candidate] = field(default_factory=list)
    dropped_tracks: int = 0
    fp_suppressed: int = 0
    error: str | None = None


@dataclass
class _Item:
    ts: float
    image: np.ndarray
    motion: MotionResult | None = None
    waiting: int = 0  # 0 = ready to process
    phase: str = ""  # "full" or "zoom"
    dets: list[Detection] | None = None  # None = the detector did not run


@dataclass
class _Session:
    camera_id: str
    cfg: CameraConfig
    gate: MotionGate
    tracker: Tracker
    filter: DetectionFilter
    recorder: SegmentRecorder | SourceClipRecorder
    width: int
    height: int
    wall_start: float
    source: str
    report: ClipReport
    last_detect_ts: float = -1e9
    event: OpenEvent | None = None
    last_event_end: float = -1e9  # a split event continues from here, not from where its tracks began


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


class EdgeAgent:
    def __init__(
        self,
        settings: AgentSettings,
        config: ConfigProvider,
        detector: PersonDetector,
        outbox: Outbox | None = None,
        on_candidate: Callable[[Candidate], None] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.detector = detector
        self.outbox = outbox
        self.on_candidate = on_candidate
        self.fp_memories = FpMemoryStore(settings.fp_memory_dir)
        self.stationary = StationaryRegistry(settings.stationary_path)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    # -- sources ----------------------------------------------------------------------------------
    def run_source(self, source: str, camera_id: str | None = None) -> list[ClipReport]:
        """Every clip of a file, folder or stream; an unreadable clip is reported and skipped."""
        reports = []
        default_camera = camera_id or _camera_from_source(source)
        for uri in iter_clip_uris(source):
            if self._stop.is_set():
                break
            reports.append(self.process_clip(uri, default_camera))
        return reports

    def process_clip(self, uri: str, camera_id: str) -> ClipReport:
        report = ClipReport(clip=uri, camera_id=camera_id)
        cfg = self.config.for_camera(camera_id)
        if not cfg.enabled:
            log.info("camera disabled; clip skipped", extra={"camera_id": camera_id, "clip": uri})
            return report
        try:
            clip = open_clip(uri)
            session = _Session(
                camera_id=camera_id, cfg=cfg, gate=MotionGate(cfg.motion), tracker=Tracker(cfg.tracking),
                filter=DetectionFilter(cfg.filters, clip.width, clip.height),
                recorder=self._recorder(clip, camera_id, cfg),
                width=clip.width, height=clip.height, wall_start=clip.wall_start, source=uri, report=report,
            )
            self._run_frames(session, clip.frames(cfg.sample_fps))
        except SourceError as exc:
            report.error = str(exc)
            log.error("clip unreadable; going on with the next", extra={"camera_id": camera_id, "clip": uri,
                                                                        "error": str(exc)})
        return report

    def _recorder(self, clip, camera_id: str, cfg: CameraConfig) -> SegmentRecorder | SourceClipRecorder:
        if self.settings.clip_mode == "source" and not clip.is_stream:
            return SourceClipRecorder(self.settings.clips_dir, camera_id, Path(clip.uri), clip.fps)
        return SegmentRecorder(self.settings.clips_dir, camera_id, cfg.sample_fps)

    # -- the loop ---------------------------------------------------------------------------------
    def _run_frames(self, s: _Session, frames) -> None:
        pipe = self.detector.pipeline(self.settings.inference_jobs)
        pending: deque[_Item] = deque()
        calls_before = self.detector.calls
        try:
            for frame in frames:
                if self._stop.is_set():
                    break
                self._refresh_config(s)
                s.report.frames_sampled += 1
                item = _Item(frame.ts, frame.image)
                motion = s.gate.check(frame.image) if s.cfg.motion.enabled else MotionResult(True, 1.0, [])
                keyframe = frame.ts - s.last_detect_ts >= s.cfg.motion.keyframe_interval_s
                if motion.moving or keyframe:
                    item.motion, item.waiting, item.phase = motion, 1, "full"
                    s.last_detect_ts = frame.ts
                    s.report.detector_frames += 1
                    pipe.submit(frame.image, item, floor=s.cfg.detect_threshold)
                pending.append(item)
                self._collect(s, pipe)
                while pending and pending[0].waiting == 0:
                    self._analyse(s, pending.popleft())
            while pending:
                pipe.drain_wait()
                self._collect(s, pipe)
                while pending and pending[0].waiting == 0:
                    self._analyse(s, pending.popleft())
        finally:
            pipe.drain_wait()
            s.report.detector_calls += self.detector.calls - calls_before
            for track in s.tracker.close_all():
                self._log_dropped(s, track)
            if s.event is not None:
                self._close_event(s)

    def _collect(self, s: _Session, pipe) -> None:
        for item, dets in pipe.ready():
            if item.phase == "full":
                item.dets = dets
                zoom = self._zoom_for(s, item, dets)
                if zoom:
                    item.phase = "zoom"
                    pipe.submit(item.image, item, regions=zoom, floor=s.cfg.detect_threshold)
                    continue
            else:
                item.dets = self.detector.merge([item.dets or [], dets])
            item.waiting = 0

    def _zoom_for(self, s: _Session, item: _Item, dets: list[Detection]) -> list[Region]:
        """'auto' tiling: zoom on small motion only where the full frame saw nobody (keeps throughput)."""
        if s.cfg.tiling == "off" or item.motion is None:
            return []
        if s.cfg.tiling == "always":
            return tile_regions(s.width, s.height)
        if any(d.score >= s.cfg.detect_threshold for d in dets):
            return []
        return zoom_regions(item.motion, s.width, s.height)

    def _refresh_config(self, s: _Session) -> None:
        cfg = self.config.for_camera(s.camera_id)
        if cfg is s.cfg:
            return
        s.cfg = cfg
        s.gate.update_settings(cfg.motion)
        s.tracker.settings = cfg.tracking
        s.filter = DetectionFilter(cfg.filters, s.width, s.height)

    def _analyse(self, s: _Session, item: _Item) -> None:
        s.recorder.push(item.ts, item.image)
        kept: list[Detection] = []
        if item.dets is None:
            closed = []  # the motion gate skipped this frame: nothing moved, so no track has left either
        else:
            memory = self.fp_memories.get(s.camera_id)
            for verdict in s.filter.apply(item.dets, s.cfg.detect_threshold):
                if not verdict.kept:
                    continue
                match = memory.match(item.image, verdict.detection.as_xyxy(), s.cfg.fp_match_threshold)
                if match:
                    s.report.fp_suppressed += 1
                    log.info("detection matches a known false positive", extra={
                        "decision": "suppressed", "camera_id": s.camera_id, "ts": round(item.ts, 2),
                        "fp_entry": match.entry_id, "similarity": round(match.similarity, 3),
                        "score": round(verdict.detection.score, 3)})
                    continue
                kept.append(verdict.detection)
            closed = s.tracker.update(item.ts, kept)
        for track in closed:
            self._log_dropped(s, track)
        # Only tracks seen in this frame open or extend an event: a track kept alive across frames the
        # detector skipped must not hold an event open by itself.
        qualifying = [t for t in s.tracker.active if t.last_ts == item.ts and self._qualifies(s, t)]
        if qualifying:
            if s.event is None:
                start = max(min(t.first_ts for t in qualifying), s.last_event_end)
                s.event = OpenEvent(new_event_id(), start, item.ts)
                s.recorder.start(s.event.event_id)
            for track in qualifying:
                s.event.tracks[track.track_id] = track
                track.announced = True
            s.event.last_ts = item.ts
            s.event.offer_frame(item.ts, item.image, max(t.last.det.score for t in qualifying), kept)
        if s.event is not None:
            t = s.cfg.tracking
            if item.ts - s.event.last_ts > t.event_gap_s or item.ts - s.event.start_ts >= t.max_event_s:
                self._close_event(s)

    def _qualifies(self, s: _Session, track: Track) -> bool:
        ok, _ = s.tracker.qualifies(track, s.cfg.threshold)
        if not ok:
            return False
        if track.displacement() < s.cfg.tracking.stationary_px:
            box = _norm(track.last.det, s.width, s.height)
            earlier = self.stationary.seen(s.camera_id, box, s.cfg.tracking.stationary_ttl_s)
            if earlier and not track.announced:
                if not track.suppressed_logged:
                    track.suppressed_logged = True
                    log.info("stationary object already announced", extra={
                        "decision": "suppressed", "camera_id": s.camera_id, "track_id": track.track_id,
                        "announced_by": earlier})
                return False
        return True

    def _log_dropped(self, s: _Session, track: Track) -> None:
        if track.announced:
            return
        s.report.dropped_tracks += 1
        _, why = s.tracker.qualifies(track, s.cfg.threshold)
        level = logging.INFO if track.hits >= 2 else logging.DEBUG
        log.log(level, "track dropped", extra={
            "decision": "dropped", "camera_id": s.camera_id, "track_id": track.track_id, "reason": why,
            "hits": track.hits, "first_ts": round(track.first_ts, 2), "last_ts": round(track.last_ts, 2),
            "score_max": round(max(p.det.score for p in track.points), 3)})

    # -- events -----------------------------------------------------------------------------------
    def _close_event(self, s: _Session) -> None:
        event, s.event = s.event, None
        assert event is not None
        s.last_event_end = event.last_ts
        clip_ref = s.recorder.finish()
        k = s.cfg.tracking.score_top_k
        everyone = sorted((t.stats(k) for t in event.tracks.values()), key=lambda st: -st.score_track)
        # A busy scene can hold hundreds of tracks in a minute: the message keeps the strongest, so a
        # candidate stays under IoT Core's 128 KB message cap.
        stats = everyone[:MAX_TRACKS_IN_MESSAGE]
        score = stats[0].score_track
        reasons = [f"track {st.track_id}: score {st.score_track:.2f} over {st.hits} hits in "
                   f"{st.last_ts - st.first_ts:.1f}s, moved {st.displacement:.1f} box heights" for st in stats[:5]]
        if len(everyone) > len(reasons):
            reasons.append(f"{len(everyone)} qualifying tracks in all")
        for track in event.tracks.values():
            if track.displacement() < s.cfg.tracking.stationary_px:
                self.stationary.remember(s.camera_id, _norm(track.last.det, s.width, s.height), event.event_id,
                                         s.cfg.tracking.stationary_ttl_s)
        self._emit(s, event.event_id, event.start_ts, max(event.last_ts, event.start_ts), event.best_ts,
                   event.best_snapshot, event.best_boxes, stats, score, s.cfg.threshold, reasons, clip_ref)

    def _emit(self, s: _Session, event_id: str, start: float, end: float, best_ts: float, snapshot: bytes,
              boxes: list[Detection], stats: list[TrackStats], score: float, threshold: float,
              reasons: list[str], clip_ref: ClipRef) -> Candidate:
        candidate = Candidate(
            event_id=event_id, gateway_id=self.settings.gateway_id, camera_id=s.camera_id,
            site_id=self.settings.site_id, source=Path(s.source).name,
            started_at=_wall(s.wall_start + start), ended_at=_wall(s.wall_start + end),
            start_offset_s=round(start, 3), end_offset_s=round(end, 3),
            frame_width=s.width, frame_height=s.height, best_frame_offset_s=round(best_ts, 3),
            snapshot_jpeg=snapshot,
            boxes=[Box(x1=d.x1, y1=d.y1, x2=d.x2, y2=d.y2, score=round(d.score, 4)) for d in boxes],
            tracks=stats, score=round(min(score, 1.0), 4), threshold=threshold, model=self.detector.ref,
            config_version=self.config.version, reasons=reasons, clip=clip_ref,
        )
        if self.outbox is not None:
            put_candidate(self.outbox, candidate)
        s.report.candidates.append(candidate)
        log.info("candidate sent", extra={
            "decision": "candidate", "event_id": event_id, "camera_id": s.camera_id, "score": candidate.score,
            "start_s": candidate.start_offset_s, "end_s": candidate.end_offset_s, "tracks": len(stats),
            "clip": clip_ref.uri, "reasons": reasons})
        if self.on_candidate is not None:
            self.on_candidate(candidate)
        return candidate

    # -- stills -----------------------------------------------------------------------------------
    def process_image(self, image: np.ndarray, camera_id: str, name: str = "") -> ClipReport:
        """A single picture (snapshot cameras, evaluation): no motion or track exists, so one frame decides."""
        cfg = self.config.for_camera(camera_id)
        height, width = image.shape[:2]
        report = ClipReport(clip=name, camera_id=camera_id, frames_sampled=1, detector_frames=1)
        calls = self.detector.calls
        dets = self.detector.detect_tiled(image) if cfg.tiling == "always" else self.detector.detect(image)
        report.detector_calls = self.detector.calls - calls
        filt = DetectionFilter(cfg.filters, width, height)
        memory = self.fp_memories.get(camera_id)
        kept = []
        for verdict in filt.apply(dets, cfg.still_threshold, still=True):
            if verdict.kept and memory.match(image, verdict.detection.as_xyxy(), cfg.fp_match_threshold) is None:
                kept.append(verdict.detection)
            elif verdict.kept:
                report.fp_suppressed += 1
        if not kept:
            log.debug("still: nobody", extra={"decision": "dropped", "camera_id": camera_id, "image": name})
            return report
        event_id = new_event_id()
        folder = self.settings.clips_dir / camera_id
        folder.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise ValueError(f"{name}: cannot encode the picture")
        (folder / f"{event_id}.jpg").write_bytes(buf.tobytes())
        clip_ref = ClipRef(kind="local", uri=f"{camera_id}/{event_id}.jpg", content_type="image/jpeg",
                           sha256=hashlib.sha256(buf.tobytes()).hexdigest(), size_bytes=int(buf.nbytes))
        stats = [TrackStats(track_id=i + 1, hits=1, frames_seen=1, first_ts=0, last_ts=0, score_track=d.score,
                            score_max=d.score, score_mean=d.score, displacement=0, mean_height_px=d.height)
                 for i, d in enumerate(kept)]
        session = _Session(camera_id, cfg, MotionGate(cfg.motion), Tracker(cfg.tracking), filt,
                           SegmentRecorder(self.settings.clips_dir, camera_id, 1.0), width, height,
                           time.time(), name, report)
        reasons = [f"still image: best person score {kept[0].score:.2f} ≥ {cfg.still_threshold:.2f}"]
        self._emit(session, event_id, 0.0, 0.0, 0.0, encode_snapshot(image), kept, stats, kept[0].score,
                   cfg.still_threshold, reasons, clip_ref)
        return report


def _norm(det: Detection, width: int, height: int) -> tuple[float, float, float, float]:
    return (det.x1 / width, det.y1 / height, det.x2 / width, det.y2 / height)


def _wall(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _camera_from_source(source: str) -> str:
    path = Path(source.rstrip("/"))
    name = path.name if path.is_dir() else path.stem
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip("-.") or "camera"
    return cleaned[:64]
