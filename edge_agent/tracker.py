"""Track-level scoring: one confident frame is not a person; a person persists and moves like one.

Greedy IoU matching with a centre-distance fallback (at 5 fps a small walking person can move more
than its own width between samples, so IoU alone would break the track). Frames the motion gate
skipped do not count against a track: only frames where the detector actually ran.

A track can live for days (a parked car, a coat on a hook), so it keeps running aggregates (hits, the
k best scores, the farthest travel, the summed heights) and only a short window of recent points:
its memory and the work per frame stay constant however long it lives.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from contracts import TrackingSettings, TrackStats
from models.detector import Detection
from models.geometry import iou_matrix

RECENT_POINTS = 32  # enough for the snapshot boxes and the last position; older points live in the aggregates
TOP_K_KEPT = 50  # TrackingSettings.score_top_k is at most 50
MAX_ACTIVE_TRACKS = 128  # a frame with hundreds of boxes (a crowd, a glitch) cannot grow the tracker forever


@dataclass
class TrackPoint:
    ts: float
    det: Detection


def _centre(det: Detection) -> tuple[float, float]:
    return ((det.x1 + det.x2) / 2, (det.y1 + det.y2) / 2)


@dataclass
class Track:
    track_id: int
    points: deque[TrackPoint] = field(default_factory=lambda: deque(maxlen=RECENT_POINTS))
    frames_seen: int = 0  # detector runs since the track began
    closed: bool = False
    announced: bool = False
    suppressed_logged: bool = False  # one log line per suppressed track, not one per frame
    hits: int = 0
    first_ts: float = 0.0
    _first_centre: tuple[float, float] = (0.0, 0.0)
    _max_travel: float = 0.0
    _height_sum: float = 0.0
    _score_sum: float = 0.0
    _score_max: float = 0.0
    _best: TrackPoint | None = None
    _top: list[float] = field(default_factory=list)  # min-heap of the best scores

    @classmethod
    def start(cls, track_id: int, ts: float, det: Detection) -> Track:
        track = cls(track_id, frames_seen=1)
        track.add(ts, det)
        return track

    def add(self, ts: float, det: Detection) -> None:
        if self.hits == 0:
            self.first_ts = ts
            self._first_centre = _centre(det)
        self.points.append(TrackPoint(ts, det))
        self.hits += 1
        cx, cy = _centre(det)
        self._max_travel = max(self._max_travel, math.hypot(cx - self._first_centre[0], cy - self._first_centre[1]))
        self._height_sum += det.height
        self._score_sum += det.score
        if self._best is None or det.score > self._best.det.score:
            self._best = TrackPoint(ts, det)
        self._score_max = max(self._score_max, det.score)
        if len(self._top) < TOP_K_KEPT:
            heapq.heappush(self._top, det.score)
        elif det.score > self._top[0]:
            heapq.heapreplace(self._top, det.score)

    @property
    def last(self) -> TrackPoint:
        return self.points[-1]

    @property
    def last_ts(self) -> float:
        return self.points[-1].ts

    @property
    def score_max(self) -> float:
        return self._score_max

    @property
    def mean_height(self) -> float:
        return self._height_sum / max(self.hits, 1)

    def score(self, top_k: int) -> float:
        # Asked for every track every frame: sorting at most TOP_K_KEPT floats in C is ~10x cheaper than
        # heapq.nlargest, and takes the same scores in the same (descending) order, so the same sum.
        best = sorted(self._top, reverse=True)[:top_k]
        # Divide by k, not len(best): a track with one lucky frame cannot reach a high score.
        return sum(best) / top_k

    def displacement(self) -> float:
        """Centre travel from the first to the farthest point, in mean box heights."""
        return self._max_travel / max(self.mean_height, 1.0)

    def best_point(self) -> TrackPoint:
        assert self._best is not None
        return self._best

    def stats(self, top_k: int) -> TrackStats:
        return TrackStats(
            track_id=self.track_id,
            hits=self.hits,
            frames_seen=max(self.frames_seen, self.hits),
            first_ts=round(self.first_ts, 3),
            last_ts=round(self.last_ts, 3),
            score_track=round(min(1.0, self.score(top_k)), 4),
            score_max=round(self._score_max, 4),
            score_mean=round(self._score_sum / max(self.hits, 1), 4),
            displacement=round(self.displacement(), 3),
            mean_height_px=round(self.mean_height, 1),
        )


class Tracker:
    def __init__(self, settings: TrackingSettings) -> None:
        self.settings = settings
        self.active: list[Track] = []
        self._next_id = 1

    def _affinities(self, detections: list[Detection]) -> np.ndarray:
        """(tracks, detections): 1 + IoU where boxes overlap enough, else 1 - centre distance (in box heights)
        for a near box of similar size, else 0. One array pass: a crowd is dozens of tracks times boxes."""
        last = np.array([t.last.det.as_xyxy() for t in self.active], np.float64).reshape(-1, 4)
        boxes = np.array([d.as_xyxy() for d in detections], np.float64).reshape(-1, 4)
        overlap = iou_matrix(last, boxes)
        h_last, h_det = last[:, 3] - last[:, 1], boxes[:, 3] - boxes[:, 1]
        scale = np.maximum(np.maximum(h_last[:, None], h_det[None, :]), 1.0)
        size_ratio = np.minimum(h_last[:, None], h_det[None, :]) / scale
        dx = (last[:, None, 0] + last[:, None, 2] - boxes[None, :, 0] - boxes[None, :, 2]) / 2
        dy = (last[:, None, 1] + last[:, None, 3] - boxes[None, :, 1] - boxes[None, :, 3]) / 2
        distance = np.hypot(dx, dy) / scale
        near = np.where((distance < 0.75) & (size_ratio > 0.5), 1.0 - distance, 0.0)
        return np.where(overlap >= self.settings.match_iou, 1.0 + overlap, near)

    def update(self, ts: float, detections: list[Detection]) -> list[Track]:
        """Feed one frame where the detector ran; returns tracks closed by this frame."""
        for track in self.active:
            track.frames_seen += 1
        pairs: list[tuple[int, int]] = []
        if self.active and detections:
            affinity = self._affinities(detections)
            rows, cols = np.nonzero(affinity > 0)
            # Best affinity first; ties go to the later track and box, as a reverse sort of tuples would.
            order = np.lexsort((-cols, -rows, -affinity[rows, cols]))
            pairs = [(int(rows[k]), int(cols[k])) for k in order]
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        for ti, di in pairs:
            if ti in used_tracks or di in used_dets:
                continue
            used_tracks.add(ti)
            used_dets.add(di)
            self.active[ti].add(ts, detections[di])
        for di, det in enumerate(detections):
            if di not in used_dets:
                self.active.append(Track.start(self._next_id, ts, det))
                self._next_id += 1
        closed = self.expire(ts)
        if len(self.active) > MAX_ACTIVE_TRACKS:
            # Keep the strongest; the rest close as if they had left (their ends are logged as dropped).
            self.active.sort(key=lambda t: (t.announced, t.score_max), reverse=True)
            overflow, self.active = self.active[MAX_ACTIVE_TRACKS:], self.active[:MAX_ACTIVE_TRACKS]
            for track in overflow:
                track.closed = True
            closed += overflow
        return closed

    def expire(self, ts: float) -> list[Track]:
        """Close tracks unseen for longer than max_gap_s (also called on frames the detector skipped)."""
        closed = [t for t in self.active if ts - t.last_ts > self.settings.max_gap_s]
        for track in closed:
            track.closed = True
        self.active = [t for t in self.active if not t.closed]
        return closed

    def close_all(self) -> list[Track]:
        closed, self.active = self.active, []
        for track in closed:
            track.closed = True
        return closed

    def qualifies(self, track: Track, threshold: float) -> tuple[bool, str]:
        s = self.settings
        short = None
        if track.hits < s.min_hits:
            short = f"{track.hits} hit(s) < {s.min_hits}"
        elif track.last_ts - track.first_ts < s.min_duration_s:
            short = f"lasted {track.last_ts - track.first_ts:.2f}s < {s.min_duration_s}s"
        if short is not None:
            best = track.score_max
            if s.glimpse_score is None or best < s.glimpse_score or best < threshold:
                return False, short
            return True, f"a glimpse: {short}, but one detection scores {best:.2f} ≥ {s.glimpse_score:.2f}"
        score = track.score(s.score_top_k)
        if score < threshold:
            return False, f"track score {score:.2f} < {threshold:.2f}"
        return True, f"track score {score:.2f} ≥ {threshold:.2f} over {track.hits} hits"
