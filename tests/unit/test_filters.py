from __future__ import annotations

from contracts import FilterSettings
from edge_agent.filters import DetectionFilter
from models.detector import Detection

W, H = 1000, 500


def person(x: float, y: float, w: float = 40, h: float = 100, score: float = 0.9) -> Detection:
    return Detection(x, y, x + w, y + h, score)


def test_score_area_and_aspect() -> None:
    f = DetectionFilter(FilterSettings(min_area=0.001, max_area=0.2, min_aspect=1.0, max_aspect=5.0), W, H)
    assert f.judge(person(10, 10), 0.5).kept
    assert "score" in f.judge(person(10, 10, score=0.4), 0.5).reason
    assert "area" in f.judge(person(10, 10, w=5, h=10), 0.5).reason  # 50 px² < 0.001 of the frame
    assert "area" in f.judge(person(0, 0, w=600, h=400), 0.5).reason
    assert "aspect" in f.judge(person(10, 10, w=100, h=40), 0.5).reason  # lying flat: a car, a shadow
    assert "aspect" in f.judge(person(10, 10, w=10, h=90), 0.5).reason  # a pole
    assert f.judge(person(10, 10, w=100, h=40), 0.5, still=True).kept  # stills: no shape rule


def test_zone_and_mask_judge_by_the_feet() -> None:
    # A zone on the lower half (the ground); the head of a person standing on its edge is outside it.
    zone = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]
    mask = [(0.8, 0.0), (1.0, 0.0), (1.0, 1.0), (0.8, 1.0)]
    f = DetectionFilter(FilterSettings(zones=[zone], masks=[mask]), W, H)
    standing_in_zone = person(100, 200, h=100)  # feet at y=300 (> 250), head at 200 (outside the zone)
    assert f.judge(standing_in_zone, 0.5).kept
    assert f.judge(person(100, 50, h=100), 0.5).reason == "outside every inclusion zone"  # feet at y=150
    assert f.judge(person(900, 300, h=100), 0.5).reason == "inside an exclusion mask"
