"""The gateway agent: every camera's first pass, one shared detector, one durable outbox.

Clip files (one-minute clips dropped in a folder) and live streams (RTSP/HTTP) both go through a
`CameraSession` (edge_agent/camera.py). The agent owns what the cameras share: the detector, the
false-positive memories, the stationary registry, the ledger of processed clips and the outbox, and it
turns a closed event into a candidate. The candidate is in the outbox before anything else can fail;
a full disk holds it in a small in-memory spill and retries, with one error line per outage.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from contracts import Box, CameraConfig, Candidate, ClipRef, TrackStats, new_event_id, redact_uri, validate_camera_id
from contracts.telemetry import CameraStatus
from edge_agent import metrics
from edge_agent.camera import CameraSession, ClipReport, zoom_regions
from edge_agent.config_provider import ConfigProvider
from edge_agent.detector_service import SharedDetector
from edge_agent.events import OpenEvent, encode_snapshot
from edge_agent.filters import DetectionFilter
from edge_agent.ledger import ClipIdentity, ClipLedger, clip_event_id, clip_identity
from edge_agent.outbox import Outbox
from edge_agent.prefetch import prefetched
from edge_agent.publisher import put_candidate
from edge_agent.segments import SegmentRecorder, SourceClipRecorder
from edge_agent.settings import AgentSettings
from edge_agent.sources import LiveSource, SourceError, SourceGap, is_live, iter_clip_uris, open_clip
from edge_agent.stationary import StationaryRegistry
from models.detector import Detection, PersonDetector, tile_regions
from models.fp_memory import FpMemoryStore

log = logging.getLogger("vigia.edge")

MAX_TRACKS_IN_MESSAGE = 32
MAX_REPORT_CANDIDATES = 256  # a one-minute clip has a handful; this only bounds a pathological one
MAX_SPILL = 1000  # candidates held in memory while the outbox cannot be written (full disk)

__all__ = ["MAX_TRACKS_IN_MESSAGE", "ClipReport", "EdgeAgent", "camera_from_source", "zoom_regions"]


class _Status:
    """A camera's health for the heartbeat, for sources the agent reads itself (clip files). Plain fields,
    counted on every frame; the CameraStatus message is built only when a heartbeat asks for it."""

    def __init__(self, source: str) -> None:
        self.source = redact_uri(source)[:512]
        self.state = "starting"
        self.frames = 0
        self.last_frame_wall: float | None = None
        self.last_error: str | None = None

    def update(self, **changes) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    def frame_seen(self, wall: float) -> None:
        self.frames += 1
        self.last_frame_wall = wall

    def snapshot(self, candidates: int) -> CameraStatus:
        return CameraStatus(
            state=self.state, source=self.source, frames=self.frames, candidates=candidates,
            last_frame_at=_wall(self.last_frame_wall) if self.last_frame_wall is not None else None,
            last_error=self.last_error[:512] if self.last_error else None)


class EdgeAgent:
    def __init__(
        self,
        settings: AgentSettings,
        config: ConfigProvider,
        detector: PersonDetector,
        outbox: Outbox | None = None,
        on_candidate: Callable[[Candidate], None] | None = None,
        ledger: ClipLedger | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.detector = detector
        self.shared = SharedDetector(detector, settings.inference_jobs)
        self.outbox = outbox
        self.on_candidate = on_candidate
        self.ledger = ledger
        self.fp_memories = FpMemoryStore(settings.fp_memory_dir)
        self.stationary = StationaryRegistry(settings.stationary_path)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._spill: deque[Candidate] = deque()
        self._spill_logged = False
        self._statuses: dict[str, _Status] = {}
        self._live: dict[str, LiveSource] = {}
        self._candidates_by_camera: dict[str, int] = {}
        metrics.configure(settings.data_dir, settings.gateway_id)  # EMF lines to <data dir>/metrics/edge.jsonl

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- status -----------------------------------------------------------------------------------
    def camera_status(self) -> dict[str, CameraStatus]:
        """Every camera's source health, for the heartbeat."""
        out: dict[str, CameraStatus] = {}
        with self._lock:
            items = list(self._statuses.items())
            live = list(self._live.items())
        for camera_id, status in items:
            out[camera_id] = status.snapshot(self._candidates_by_camera.get(camera_id, 0))
        for camera_id, source in live:
            out[camera_id] = source.status.model_copy(
                update={"candidates": self._candidates_by_camera.get(camera_id, 0)})
        return out

    def _status(self, camera_id: str, source: str) -> _Status:
        with self._lock:
            if camera_id not in self._statuses:
                self._statuses[camera_id] = _Status(source)
            return self._statuses[camera_id]

    # -- sources ----------------------------------------------------------------------------------
    def run_source(self, source: str, camera_id: str | None = None, watch_s: float | None = None) -> list[ClipReport]:
        """A live stream (until stopped), or every clip of a file or folder; with `watch_s`, keep polling the
        folder for new clips every `watch_s` seconds until stopped. An unreadable clip is reported and skipped.

        Raises SourceError (before any file is written) for an empty or missing source, ValueError for an
        invalid camera id."""
        camera_id = validate_camera_id(camera_id or camera_from_source(source))
        if is_live(source):
            return [self.run_live(source, camera_id)]
        reports: list[ClipReport] = []
        if watch_s is not None and not Path(source).is_dir():
            raise SourceError(f"{source}: --watch needs a folder of clips")
        # Refuses "", a missing path and (unless watching, where clips come later) an empty folder at once.
        uris = list(iter_clip_uris(source)) if watch_s is None or any(Path(source).iterdir()) else []
        status = self._status(camera_id, source)
        while not self._stop.is_set():
            for uri in uris:
                if self._stop.is_set():
                    break
                report = self.process_clip(uri, camera_id, keep_candidates=watch_s is None)
                if report.skipped is None or watch_s is None:
                    if watch_s is None:
                        reports.append(report)
                    self._log_clip(report)
            if watch_s is None:
                break
            status.update(state="connected")
            if self._stop.wait(watch_s):
                break
            try:
                uris = list(iter_clip_uris(source))
            except SourceError as exc:  # the folder emptied or vanished: wait for clips to come back
                status.update(last_error=str(exc))
                uris = []
        status.update(state="stopped" if self._stop.is_set() else "finished")
        return reports

    def _log_clip(self, report: ClipReport) -> None:
        metrics.count("ClipsProcessed" if report.error is None else "ClipsFailed", report.camera_id)
        log.info("clip done" if report.error is None else "clip failed", extra={
            "camera_id": report.camera_id, "clip": report.clip, "frames": report.frames_sampled,
            "detector_frames": report.detector_frames, "candidates": report.candidate_count,
            "skipped": report.skipped, "error": report.error})

    def process_clip(self, uri: str, camera_id: str, keep_candidates: bool = True) -> ClipReport:
        camera_id = validate_camera_id(camera_id)
        report = ClipReport(clip=uri, camera_id=camera_id, keep_candidates=keep_candidates)
        status = self._status(camera_id, uri)
        cfg = self.config.for_camera(camera_id)
        if not cfg.enabled:
            report.skipped = "camera disabled"
            log.info("camera disabled; clip skipped", extra={"camera_id": camera_id, "clip": uri})
            return report
        if self._ledger("is_done", uri):
            report.skipped = "already processed"
            return report
        try:
            clip = open_clip(uri)
        except SourceError as exc:
            return self._clip_failed(report, status, uri, exc)
        self._ledger("begin", uri, camera_id)
        status.update(state="connected", last_error=None)
        recorder = self._recorder(clip, camera_id, cfg)
        session = CameraSession(self, camera_id, Path(uri).name, clip.width, clip.height,
                                recorder, report, clip_identity=clip_identity(uri))
        session.announced_before = self._ledger("announced", uri) or []
        calls = self.detector.calls
        try:
            # Segments copy the clip's own packets when the recorder writes segments (not clip_mode=source).
            frames = clip.frames(cfg.sample_fps, keep_packets=isinstance(recorder, SegmentRecorder))
            for frame in prefetched(frames, name=f"decode-{camera_id}"):
                if self._stop.is_set():
                    break
                session.feed(frame.ts, frame.wall, frame.image, frame.packets)
                status.frame_seen(frame.wall)
                self.retry_spill()
        except SourceError as exc:
            report.error = str(exc)
            log.error("clip unreadable; going on with the next", extra={"camera_id": camera_id, "clip": uri,
                                                                        "error": str(exc)})
        finally:
            session.close()
            clip.close()
            report.detector_calls += self.detector.calls - calls  # shared counter: exact with one camera
        if not self._stop.is_set():  # an interrupted clip stays open in the ledger and is resumed
            self._ledger("finish", uri, frames=report.frames_sampled, candidates=report.candidate_count,
                         error=report.error)
        return report

    def _ledger(self, operation: str, *args, **kwargs):
        """A ledger call that cannot stop detection: on a full disk the clip is processed anyway (its event
        ids are derived from the clip, so a re-run after a restart still announces nothing twice)."""
        if self.ledger is None:
            return None
        try:
            return getattr(self.ledger, operation)(*args, **kwargs)
        except OSError as exc:
            log.error("clip ledger not updated", extra={"operation": operation, "error": str(exc)})
            return None

    def _clip_failed(self, report: ClipReport, status: _Status, uri: str, exc: Exception) -> ClipReport:
        report.error = str(exc)
        status.update(last_error=str(exc))
        log.error("clip unreadable; going on with the next", extra={"camera_id": report.camera_id, "clip": uri,
                                                                    "error": str(exc)})
        self._ledger("begin", uri, report.camera_id)
        self._ledger("finish", uri, frames=0, candidates=0, error=str(exc))
        return report

    def run_live(self, uri: str, camera_id: str) -> ClipReport:
        """A live stream until the agent stops: reconnects on its own; a gap closes the open event."""
        camera_id = validate_camera_id(camera_id)
        cfg = self.config.for_camera(camera_id)
        s = self.settings
        source = LiveSource(uri, camera_id, cfg.sample_fps, stall_timeout_s=s.stall_timeout_s,
                            open_timeout_s=s.open_timeout_s, backoff_min_s=s.reconnect_min_s,
                            backoff_max_s=s.reconnect_max_s)
        with self._lock:
            self._live[camera_id] = source
        report = ClipReport(clip=redact_uri(uri), camera_id=camera_id, keep_candidates=False)
        session: CameraSession | None = None
        try:
            for item in source.frames(self._stop):
                if isinstance(item, SourceGap):
                    if session is not None:
                        session.close()
                        session = None
                    continue
                cfg = self.config.for_camera(camera_id)
                source.sample_fps = cfg.sample_fps
                if session is None:
                    height, width = item.image.shape[:2]
                    session = CameraSession(self, camera_id, redact_uri(uri), width, height,
                                            SegmentRecorder(self.settings.clips_dir, camera_id, cfg.sample_fps),
                                            report)
                session.feed(item.ts, item.wall, item.image, item.packets)
                self.retry_spill()
        finally:
            if session is not None:
                session.close()
            source.close()
        return report

    def _recorder(self, clip, camera_id: str, cfg) -> SegmentRecorder | SourceClipRecorder:
        if self.settings.clip_mode == "source" and not clip.is_stream:
            return SourceClipRecorder(self.settings.clips_dir, camera_id, Path(clip.uri), clip.fps)
        return SegmentRecorder(self.settings.clips_dir, camera_id, cfg.sample_fps)

    # -- events → candidates ----------------------------------------------------------------------
    def event_id_for(self, session: CameraSession, start: float) -> str:
        """Clip files get ids derived from the clip and the event's start, so that re-processing a clip after
        a crash gives the same ids (the outbox and the cloud both de-duplicate them); streams get new ones."""
        wall = session.wall_offset + start
        if session.clip_identity is None or not self.settings.stable_event_ids:
            return new_event_id(wall)
        for earlier in session.announced_before:  # accepted before a crash: the same event keeps its id
            if abs(earlier.start_s - start) < 0.5:
                return earlier.event_id
        return clip_event_id(self.settings.gateway_id, session.camera_id, session.clip_identity,
                             session.wall_offset, start)

    def close_event(self, session: CameraSession, event: OpenEvent, clip_ref: ClipRef | None,
                    clip_error: str | None) -> Candidate | None:
        cfg = session.cfg
        k = cfg.tracking.score_top_k
        everyone = sorted((t.stats(k) for t in event.tracks.values()), key=lambda st: -st.score_track)
        # A busy scene can hold hundreds of tracks in a minute: the message keeps the strongest, so a
        # candidate stays under IoT Core's 128 KB message cap.
        stats = everyone[:MAX_TRACKS_IN_MESSAGE]
        reasons = [f"track {st.track_id}: score {st.score_track:.2f} over {st.hits} hits in "
                   f"{st.last_ts - st.first_ts:.1f}s, moved {st.displacement:.1f} box heights" for st in stats[:5]]
        if len(everyone) > len(reasons):
            reasons.append(f"{len(everyone)} qualifying tracks in all")
        if clip_error:
            reasons.append(f"no clip: {clip_error}"[:200])
        candidate = self._candidate(session, event.event_id, event.start_ts, max(event.last_ts, event.start_ts),
                                    event.best_ts, event.best_snapshot, event.best_boxes, stats,
                                    stats[0].score_track, cfg.threshold, reasons, clip_ref)
        self._emit(session.report, candidate, session.clip_identity)
        for track in event.tracks.values():
            if track.displacement() < cfg.tracking.stationary_px:
                self.stationary.remember(session.camera_id, session.norm(track.last.det), event.event_id,
                                         cfg.tracking.stationary_ttl_s)
        return candidate

    def _candidate(self, session: CameraSession, event_id: str, start: float, end: float, best_ts: float,
                   snapshot: bytes, boxes: list[Detection], stats: list[TrackStats], score: float,
                   threshold: float, reasons: list[str], clip_ref: ClipRef | None) -> Candidate:
        return Candidate(
            event_id=event_id, gateway_id=self.settings.gateway_id, camera_id=session.camera_id,
            site_id=self.settings.site_id, source=redact_uri(session.source)[:512],
            started_at=_wall(session.wall_offset + start), ended_at=_wall(session.wall_offset + end),
            start_offset_s=round(start, 3), end_offset_s=round(end, 3),
            frame_width=session.width, frame_height=session.height, best_frame_offset_s=round(best_ts, 3),
            snapshot_jpeg=snapshot,
            boxes=[Box(x1=d.x1, y1=d.y1, x2=d.x2, y2=d.y2, score=round(d.score, 4)) for d in boxes],
            tracks=stats, score=round(min(score, 1.0), 4), threshold=threshold, model=self.detector.ref,
            config_version=self.config.version, reasons=reasons, clip=clip_ref,
        )

    def _emit(self, report: ClipReport, candidate: Candidate, clip_identity: ClipIdentity | None) -> None:
        if self._accept(candidate) is False:
            log.info("candidate already accepted before a restart; not announced again", extra={
                "decision": "suppressed", "event_id": candidate.event_id, "camera_id": candidate.camera_id})
            metrics.count("Suppressed", candidate.camera_id, rule="already_accepted")
            return
        if clip_identity is not None:
            self._ledger("record_event", report.clip, candidate.event_id, candidate.start_offset_s,
                         candidate.end_offset_s)
        report.candidate_count += 1
        if report.keep_candidates and len(report.candidates) < MAX_REPORT_CANDIDATES:
            report.candidates.append(candidate)
        with self._lock:
            self._candidates_by_camera[candidate.camera_id] = self._candidates_by_camera.get(candidate.camera_id,
                                                                                             0) + 1
        metrics.count("Candidates", candidate.camera_id)
        log.info("candidate sent", extra={
            "decision": "candidate", "event_id": candidate.event_id, "camera_id": candidate.camera_id,
            "score": candidate.score, "start_s": candidate.start_offset_s, "end_s": candidate.end_offset_s,
            "tracks": len(candidate.tracks), "clip": candidate.clip.uri if candidate.clip else None,
            "reasons": candidate.reasons})
        if self.on_candidate is not None:
            try:
                self.on_candidate(candidate)
            except Exception:
                log.exception("candidate callback failed", extra={"event_id": candidate.event_id})

    def _accept(self, candidate: Candidate) -> bool | None:
        """Into the outbox: True if new, False if this event id was already accepted, None if it is held in
        memory because the outbox cannot be written now (retried on the next frames)."""
        if self.outbox is None:
            return True
        with self._lock:
            if not self._spill:
                try:
                    return put_candidate(self.outbox, candidate)
                except OSError as exc:
                    log.error("outbox cannot be written; candidates held in memory until it can", extra={
                        "event_id": candidate.event_id, "error": str(exc)})
                    self._spill_logged = True
            self._spill.append(candidate)
            if len(self._spill) > MAX_SPILL:
                lost = self._spill.popleft()
                log.error("outbox unwritable for too long; oldest held candidate dropped",
                          extra={"event_id": lost.event_id, "camera_id": lost.camera_id})
        self.retry_spill()
        return None

    def retry_spill(self) -> None:
        if self.outbox is None or not self._spill:
            return
        with self._lock:
            while self._spill:
                candidate = self._spill[0]
                try:
                    put_candidate(self.outbox, candidate)
                except OSError as exc:
                    if not self._spill_logged:
                        self._spill_logged = True
                        log.error("outbox cannot be written; candidates held in memory until it can", extra={
                            "event_id": candidate.event_id, "held": len(self._spill), "error": str(exc)})
                    return
                self._spill.popleft()
            if self._spill_logged:
                self._spill_logged = False
                log.info("outbox writable again; held candidates accepted", extra={})

    @property
    def held_candidates(self) -> int:
        return len(self._spill)

    # -- stills -----------------------------------------------------------------------------------
    def process_image(self, image: np.ndarray, camera_id: str, name: str = "") -> ClipReport:
        """A single picture (snapshot cameras, evaluation): no motion or track exists, so one frame decides."""
        camera_id = validate_camera_id(camera_id)
        cfg = self.config.for_camera(camera_id)
        height, width = image.shape[:2]
        report = ClipReport(clip=name, camera_id=camera_id, frames_sampled=1, detector_frames=1)
        calls = self.detector.calls
        dets = self._still_detections(image, cfg)
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
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise ValueError(f"{name}: cannot encode the picture")
        clip_ref = None
        try:
            folder = self.settings.clips_dir / camera_id
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{event_id}.jpg").write_bytes(buf.tobytes())
            clip_ref = ClipRef(kind="local", uri=f"{camera_id}/{event_id}.jpg", content_type="image/jpeg",
                               sha256=hashlib.sha256(buf.tobytes()).hexdigest(), size_bytes=int(buf.nbytes))
        except OSError as exc:
            log.error("picture not stored; the candidate goes without it", extra={"event_id": event_id,
                                                                                  "error": str(exc)})
        stats = [TrackStats(track_id=i + 1, hits=1, frames_seen=1, first_ts=0, last_ts=0, score_track=d.score,
                            score_max=d.score, score_mean=d.score, displacement=0, mean_height_px=d.height)
                 for i, d in enumerate(kept)]
        session = CameraSession(self, camera_id, name, width, height, SegmentRecorder(self.settings.clips_dir,
                                                                                      camera_id, 1.0), report)
        session.wall_offset = time.time()
        reasons = [f"still image: best person score {kept[0].score:.2f} ≥ {cfg.still_threshold:.2f}"]
        candidate = self._candidate(session, event_id, 0.0, 0.0, 0.0, encode_snapshot(image), kept, stats,
                                    kept[0].score, cfg.still_threshold, reasons, clip_ref)
        session.closed = True
        self._emit(report, candidate, None)
        return report

    def _still_detections(self, image: np.ndarray, cfg: CameraConfig) -> list[Detection]:
        """'auto' on a still: no motion tells where a far person is, so when the full frame finds nobody at
        the still bar the whole picture is looked at again in 2x2 tiles (4 more inferences, empty pictures
        only; the verifier judges whatever the tiles add)."""
        if cfg.tiling == "always":
            return self.detector.detect_tiled(image)
        dets = self.detector.detect(image)
        if cfg.tiling == "off" or any(d.score >= cfg.still_threshold for d in dets):
            return dets
        height, width = image.shape[:2]
        return self.detector.merge([dets, self.detector.detect(image, tile_regions(width, height))])


def _wall(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def camera_from_source(source: str) -> str:
    """A camera id from a file or folder name (URLs: the host and path, credentials never included)."""
    if is_live(source):
        name = re.sub(r"^[a-z]+://([^/@]*@)?", "", source)
    else:
        path = Path(source.rstrip("/"))
        name = path.name if path.is_dir() else path.stem
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "camera"
    return cleaned[:64]
