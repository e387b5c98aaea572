from __future__ import annotations

import math
import random

from contracts import TrackingSettings
from edge_agent.tracker import Tracker
from models.detector import Detection
from models.geometry import iou


def det(x: float, score: float, y: float = 100, w: float = 30, h: float = 80) -> Detection:
    return Detection(x, y, x + w, y + h, score)


def one_frame_track(settings: TrackingSettings, score: float):
    tracker = Tracker(settings)
    tracker.update(0.0, [det(10, score)])
    closed = []
    for i in range(1, 15):
        closed += tracker.update(i * 0.2, [])
    assert len(closed) == 1
    return tracker, closed[0]


def test_one_frame_is_not_a_person_unless_it_is_a_clear_glimpse() -> None:
    tracker, track = one_frame_track(TrackingSettings(min_hits=2, score_top_k=3, glimpse_score=None), 0.95)
    ok, why = tracker.qualifies(track, 0.5)
    assert not ok and "hit" in why
    # A clear glimpse (a person on one frame, or a moving camera that breaks the track) goes to the verifier.
    tracker, track = one_frame_track(TrackingSettings(min_hits=2, score_top_k=3, glimpse_score=0.65), 0.7)
    ok, why = tracker.qualifies(track, 0.5)
    assert ok and "glimpse" in why and "1 hit(s) < 2" in why
    tracker, track = one_frame_track(TrackingSettings(min_hits=2, score_top_k=3, glimpse_score=0.65), 0.6)
    assert tracker.qualifies(track, 0.5) == (False, "1 hit(s) < 2")
    # The camera's own threshold still bounds a glimpse from below.
    tracker, track = one_frame_track(TrackingSettings(min_hits=2, glimpse_score=0.65), 0.7)
    assert not tracker.qualifies(track, 0.8)[0]


def test_a_walking_person_becomes_a_track_that_qualifies() -> None:
    tracker = Tracker(TrackingSettings())
    for i in range(10):  # 5 fps, 12 px a frame: more than IoU alone would follow for a 30 px wide box
        tracker.update(i * 0.2, [det(10 + 25 * i, 0.6 + 0.02 * i)])
    assert len(tracker.active) == 1
    track = tracker.active[0]
    assert track.hits == 10
    ok, _ = tracker.qualifies(track, 0.5)
    assert ok
    assert track.displacement() > 2  # moved more than two box heights


def test_track_score_uses_the_best_k_frames_not_one() -> None:
    tracker = Tracker(TrackingSettings(score_top_k=3, min_hits=2, min_duration_s=0))
    tracker.update(0.0, [det(10, 0.99)])
    tracker.update(0.2, [det(12, 0.2)])
    track = tracker.active[0]
    assert abs(track.score(3) - (0.99 + 0.2) / 3) < 1e-9
    assert not tracker.qualifies(track, 0.5)[0]


def test_two_people_keep_their_own_tracks_and_gaps_close_tracks() -> None:
    tracker = Tracker(TrackingSettings(max_gap_s=1.0))
    for i in range(5):
        tracker.update(i * 0.2, [det(10 + 5 * i, 0.8), det(400 - 5 * i, 0.7)])
    assert sorted(t.hits for t in tracker.active) == [5, 5]
    closed = tracker.expire(3.0)
    assert len(closed) == 2 and not tracker.active


def test_a_track_that_lives_for_days_keeps_constant_memory_and_exact_aggregates() -> None:
    from edge_agent.tracker import RECENT_POINTS

    tracker = Tracker(TrackingSettings(score_top_k=3))
    for i in range(20_000):  # a standing object seen at every keyframe for a long time
        tracker.update(i * 3.0, [det(100 + (i % 2), 0.6 if i != 7_000 else 0.97, h=80)])
    [track] = tracker.active
    assert track.hits == 20_000 and len(track.points) == RECENT_POINTS
    assert track.first_ts == 0.0 and track.last_ts == 19_999 * 3.0
    assert abs(track.score(3) - (0.97 + 0.6 + 0.6) / 3) < 1e-9
    assert track.best_point().ts == 7_000 * 3.0
    assert track.displacement() < 0.05 and track.stats(3).score_max == 0.97


def test_a_crowd_of_boxes_cannot_grow_the_tracker_without_bound() -> None:
    from edge_agent.tracker import MAX_ACTIVE_TRACKS

    tracker = Tracker(TrackingSettings())
    crowd = [det(x * 40.0, 0.5 + (x % 10) / 100, y=(x // 20) * 90.0) for x in range(400)]
    closed = tracker.update(0.0, crowd)
    assert len(tracker.active) == MAX_ACTIVE_TRACKS and len(closed) == 400 - MAX_ACTIVE_TRACKS


def _reference_affinity(settings: TrackingSettings, last: Detection, new: Detection) -> float:
    """The matching rule written pair by pair, as the module doc states it."""
    overlap = iou(last.as_xyxy(), new.as_xyxy())
    if overlap >= settings.match_iou:
        return 1.0 + overlap
    scale = max(last.height, new.height, 1.0)
    centre = math.hypot((last.x1 + last.x2 - new.x1 - new.x2) / 2, (last.y1 + last.y2 - new.y1 - new.y2) / 2)
    distance = centre / scale
    return 1.0 - distance if distance < 0.75 and min(last.height, new.height) / scale > 0.5 else 0.0


def test_array_matching_follows_the_pairwise_rule_on_random_walkers() -> None:
    settings = TrackingSettings()
    rng = random.Random(7)
    walkers = [[rng.uniform(0, 600), rng.uniform(0, 400), rng.uniform(20, 120)] for _ in range(12)]
    tracker = Tracker(settings)
    for step in range(60):
        frame = []
        for w in walkers:
            w[0] += rng.uniform(-25, 25)
            w[1] += rng.uniform(-10, 10)
            if rng.random() < 0.8:  # some frames miss a walker
                frame.append(Detection(w[0], w[1], w[0] + w[2] / 2.5, w[1] + w[2], 0.6))
        before = {t.track_id: t.last.det for t in tracker.active}
        tracker.update(step * 0.2, frame)
        # Every continued track took the box the greedy pairwise rule gives it.
        taken: set[int] = set()
        pairs = sorted(((_reference_affinity(settings, last, d), tid, di)
                        for tid, last in before.items() for di, d in enumerate(frame)), reverse=True)
        expected: dict[int, int] = {}
        for affinity, tid, di in pairs:
            if affinity > 0 and tid not in expected and di not in taken:
                expected[tid] = di
                taken.add(di)
        got = {t.track_id: frame.index(t.last.det) for t in tracker.active
               if t.track_id in before and t.last_ts == step * 0.2}
        assert got == expected
