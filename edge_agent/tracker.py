"""Track-level scoring: one confident frame is not a person; a person persists and moves like one.

Greedy IoU matching with a centre-distance fallback (at 5 fps a small walking person can move more
than its own width between samples, so IoU alone would break the track). Frames the motion gate
skipped do not count against a track: only frames where the detector actually ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from contracts import TrackingSettings, TrackStats
from models.detector import Detection
from models.fp_memory import iou


@dataclass
class TrackPoint:
    ts: float
    det: Detection


@dataclass
class Track:
    track_id: int
    points: list[TrackPoint] = field(default_factory=list)
    frames_seen: int = 0  # detector runs since the track began
    closed: bool = False
    announced: bool = False
    suppressed_logged: bool = False  # one log line per suppressed track, not one per frame

    @property
    def last(self) -> TrackPoint:
        return self.points[-1]

    @property
    def first_ts(self) -> float:
        return self.points[0].ts

    @property
    def last_ts(self) -> float:
        return self.points[-1].ts

    @property
    def hits(self) -> int:
        return len(self.points)

    def score(self, top_k: int) -> float:
        best = sorted((p.det.score for p in self.points), reverse=True)[:top_k]
        # Divide by k, not len(best): a track with one lucky frame cannot reach a high score.
        return sum(best) / top_k

    def displacement(self) -> float:
        """Centre travel from first to farthest point, in mean box heights."""
        cx0, cy0 = _centre(self.points[0].det)
        mean_h = sum(p.det.height for p in self.points) / len(self.points)
        travel = max(math.hypot(_centre(p.det)[0] - cx0, _centre(p.det)[1] - cy0) for p in self.points)
        return travel / max(mean_h, 1.0)

    def best_point(self) -> TrackPoint:
        return max(self.points, key=lambda p: p.det.score)

    def stats(self, top_k: int) -> TrackStats:
        scores = [p.det.score for p in self.points]
        return TrackStats(
            track_id=self.track_id,
            hits=self.hits,
            frames_seen=max(self.frames_seen, self.hits),
            first_ts=round(self.first_ts, 3),
            last_ts=round(self.last_ts, 3),
            score_track=round(min(1.0, self.score(top_k)), 4),
            score_max=round(max(scores), 4),
            score_mean=round(sum(scores) / len(scores), 4),
            displacement=round(self.displacement(), 3),
            mean_height_px=round(sum(p.det.height for p in self.points) / len(self.points), 1),
        )


def _centre(det: Detection) -> tuple[float, float]:
    return ((det.x1 + det.x2) / 2, (det.y1 + det.y2) / 2)


class Tracker:
    def __init__(self, settings: TrackingSettings) -> None:
        self.settings = settings
        self.active: list[Track] = []
        self._next_id = 1

    def _affinity(self, track: Track, det: Detection) -> float:
        last = track.last.det
        overlap = iou(last.as_xyxy(), det.as_xyxy())
        if overlap >= self.settings.match_iou:
            return 1.0 + overlap
        (ax, ay), (bx, by) = _centre(last), _centre(det)
        scale = max(last.height, det.height, 1.0)
        size_ratio = min(last.height, det.height) / scale
        distance = math.hypot(ax - bx, ay - by) / scale
        if distance < 0.75 and size_ratio > 0.5:
            return 1.0 - distance
        return 0.0

    def update(self, ts: float, detections: list[Detection]) -> list[Track]:
        """Feed one frame where the detector ran; returns tracks closed by this frame."""
        for track in self.active:
            track.frames_seen += 1
        pairs = sorted(
            ((self._affinity(t, d), ti, di) for ti, t in enumerate(self.active) for di, d in enumerate(detections)),
            reverse=True,
        )
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        for affinity, ti, di in pairs:
            if affinity <= 0:
                break
            if ti in used_tracks or di in used_dets:
                continue
            used_tracks.add(ti)
            used_dets.add(di)
            self.active[ti].points.append(TrackPoint(ts, detections[di]))
        for di, det in enumerate(detections):
            if di not in used_dets:
                track = Track(self._next_id, [TrackPoint(ts, det)], frames_seen=1)
                self._next_id += 1
                self.active.append(track)
        return self.expire(ts)

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
        if track.hits < s.min_hits:
            return False, f"{track.hits} hit(s) < {s.min_hits}"
        if track.last_ts - track.first_ts < s.min_duration_s:
            return False, f"lasted {track.last_ts - track.first_ts:.2f}s < {s.min_duration_s}s"
        score = track.score(s.score_top_k)
        if score < threshold:
            return False, f"track score {score:.2f} < {threshold:.2f}"
        return True, f"track score {score:.2f} ≥ {threshold:.2f} over {track.hits} hits"
