"""The verifier's decision rules on hand-written detections: no model, no image."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from cloud.verifier.decision import (
    FrameFindings,
    ModelDetection,
    TrackPrior,
    decide,
    find_walker,
    frame_hypotheses,
    frames_in_spans,
    group_detections,
    near_track,
    required_frames,
)
from cloud.verifier.frames import select_indices
from cloud.verifier.settings import VerifierSettings

COCO, LITE = "coco", "lite"
MODELS = [COCO, LITE]
S = VerifierSettings(models=("ssd-mobilenet-v2-coco", "ssdlite-person"))
PERSON = (100.0, 100.0, 140.0, 200.0)  # 40 x 100 px, in a 640 x 480 frame


def det(model: str, score: float, box=PERSON, scale: str = "full") -> ModelDetection:
    return ModelDetection(model, scale, box, score)


def frame(dets: list[ModelDetection], t: float = 0.0) -> FrameFindings:
    return FrameFindings(t, 640, 480, frame_hypotheses(dets, MODELS, S, 480))


def shifted(box, dx: float):
    return (box[0] + dx, box[1], box[2] + dx, box[3])


# -- one frame --------------------------------------------------------------------------------------
def test_two_architectures_agreeing_confirm():
    [hyp] = frame_hypotheses([det(COCO, 0.7), det(LITE, 0.6, shifted(PERSON, 4))], MODELS, S, 480)
    assert hyp.tier == "person"
    assert hyp.evidence == pytest.approx((0.7 * 0.6) ** 0.5)
    assert "agree" in hyp.explanation


def test_one_model_alone_is_discounted():
    [hyp] = frame_hypotheses([det(COCO, 0.7), det(COCO, 0.7, scale="2x2")], MODELS, S, 480)
    assert hyp.evidence == pytest.approx(0.7 * S.single_model_weight)
    assert hyp.tier == "maybe"  # a dog at 0.7 goes to review, not to the customer


def test_one_model_very_sure_at_several_scales_confirms():
    dets = [det(COCO, 0.95), det(COCO, 0.9, scale="2x2"), det(LITE, 0.1)]
    [hyp] = frame_hypotheses(dets, MODELS, S, 480)
    assert hyp.tier == "person"


def test_one_model_at_one_scale_only_is_discounted_again():
    [hyp] = frame_hypotheses([det(COCO, 0.95)], MODELS, S, 480)
    assert hyp.evidence == pytest.approx(0.95 * S.single_model_weight * S.unconfirmed_scale_weight)
    assert hyp.tier == "maybe"


def test_big_object_seen_only_on_tiles_is_a_zoom_artefact():
    big = (100.0, 100.0, 200.0, 300.0)  # 200 px of a 480 px frame: the full frame would see it
    dets = [det(LITE, 0.98, big, "2x2"), det(LITE, 0.9, big, "3x3")]
    [hyp] = frame_hypotheses(dets, MODELS, S, 480)
    assert hyp.evidence == pytest.approx(0.98 * S.single_model_weight * S.unconfirmed_scale_weight)
    assert hyp.tier == "maybe"  # 0.47: review at most
    assert "tiles only" in hyp.explanation


def test_small_person_seen_only_on_tiles_counts():
    small = (300.0, 300.0, 310.0, 330.0)  # 30 px: too small for the 300 px full-frame view
    dets = [det(COCO, 0.9, small, "2x2"), det(COCO, 0.88, small, "3x3")]
    [hyp] = frame_hypotheses(dets, MODELS, S, 480)
    assert hyp.tier == "person"


def test_implausible_geometry_is_dropped():
    sliver = (10.0, 10.0, 12.0, 14.0)  # 4 px tall
    flat = (10.0, 10.0, 300.0, 40.0)  # h/w 0.1
    assert group_detections([det(COCO, 0.99, sliver), det(COCO, 0.99, flat)], S) == []


def test_separate_objects_stay_separate():
    hyps = frame_hypotheses([det(COCO, 0.9), det(COCO, 0.8, shifted(PERSON, 300))], MODELS, S, 480)
    assert len(hyps) == 2


def test_weak_scores_are_nothing():
    [hyp] = frame_hypotheses([det(COCO, 0.35), det(LITE, 0.2)], MODELS, S, 480)
    assert hyp.tier == "none"


# -- a still image ----------------------------------------------------------------------------------
def test_still_confirmed_rejected_uncertain():
    prior = TrackPrior(0.0, (PERSON,))
    assert decide([frame([det(COCO, 0.9), det(LITE, 0.8)])], prior, S).decision == "confirmed"
    assert decide([frame([det(COCO, 0.7), det(COCO, 0.7, scale="2x2")])], prior, S).decision == "uncertain"
    assert decide([frame([det(COCO, 0.3)])], prior, S).decision == "rejected"
    assert decide([frame([])], prior, S).decision == "rejected"


def test_confirmed_verdict_carries_boxes_and_reasons():
    result = decide([frame([det(COCO, 0.9), det(LITE, 0.8)])], TrackPrior(0.0, (PERSON,)), S)
    assert result.boxes and result.boxes[0][0] == PERSON
    assert any("agree" in r for r in result.reasons)
    assert 0.5 <= result.score <= 1


def test_person_far_from_the_gateway_box_does_not_confirm():
    far = shifted(PERSON, 450)
    result = decide([frame([det(COCO, 0.9, far), det(LITE, 0.9, far)])], TrackPrior(0.0, (PERSON,)), S)
    assert result.decision == "rejected"
    assert result.score == 0.0
    assert any("away from the gateway's track" in r for r in result.reasons)


def test_no_gateway_boxes_anchor_on_the_strongest_object():
    result = decide([frame([det(COCO, 0.9), det(LITE, 0.9)])], TrackPrior(0.0, ()), S)
    assert result.decision == "confirmed"


# -- several frames ---------------------------------------------------------------------------------
def test_required_frames():
    assert required_frames(1, S) == 1
    assert required_frames(2, S) == 2
    assert required_frames(8, S) == 4  # 40 % of 8, rounded up


def test_temporal_rule_confirms_a_walking_person():
    prior = TrackPrior(2.0, (PERSON,))
    frames = [frame([det(COCO, 0.9, shifted(PERSON, 10 * t)), det(LITE, 0.8, shifted(PERSON, 10 * t))], t)
              for t in range(8)]
    result = decide(frames, prior, S)
    assert result.decision == "confirmed"
    assert result.person_frames == 8


def test_one_bad_frame_in_a_clip_is_not_a_person():
    prior = TrackPrior(0.0, (PERSON,))
    frames = [frame([det(COCO, 0.95), det(LITE, 0.9)], 0.0)] + [frame([], t) for t in range(1, 8)]
    assert decide(frames, prior, S).decision == "rejected"


def test_half_the_support_is_uncertain():
    prior = TrackPrior(0.0, (PERSON,))
    person = [det(COCO, 0.95), det(LITE, 0.9)]
    frames = [frame(person, 0.0), frame(person, 1.0)] + [frame([], t) for t in range(2, 8)]
    assert decide(frames, prior, S).decision == "uncertain"  # 2 of the 4 needed


def test_near_track_allows_for_walking():
    prior = TrackPrior(0.0, (PERSON,))  # 100 px tall
    moved = shifted(PERSON, 300)
    assert not near_track(moved, 0.0, prior, S)
    assert near_track(moved, 2.0, prior, S)  # 2 s at 1.5 heights/s


# -- false-positive memory --------------------------------------------------------------------------
def test_recognised_false_positive_does_not_count_and_rejects():
    findings = frame([det(COCO, 0.9), det(LITE, 0.9)])
    findings.hypotheses[0].fp_entry = "abc123"
    result = decide([findings], TrackPrior(0.0, (PERSON,)), S)
    assert result.decision == "rejected"
    assert any("false-positive memory" in r and "abc123" in r for r in result.reasons)


def test_memory_hit_of_the_gateway_box_rejects_what_would_be_uncertain():
    findings = frame([det(COCO, 0.7), det(COCO, 0.7, scale="2x2")])
    result = decide([findings], TrackPrior(0.0, (PERSON,)), S, ["gateway box repeats remembered FP x"])
    assert result.decision == "rejected"
    assert "gateway box repeats remembered FP x" in result.reasons


def test_memory_does_not_veto_a_confirmed_different_person():
    findings = frame([det(COCO, 0.9), det(LITE, 0.9)])
    result = decide([findings], TrackPrior(0.0, (PERSON,)), S, ["gateway box repeats remembered FP x"])
    assert result.decision == "confirmed"


# -- settings and frame choice ----------------------------------------------------------------------
def test_settings_are_strict():
    with pytest.raises(ValidationError):
        VerifierSettings(confirm_threshold=0.2, uncertain_threshold=0.3)
    with pytest.raises(ValidationError):
        VerifierSettings(tile_grids=(1,))
    with pytest.raises(ValidationError):
        VerifierSettings(bogus=1)
    with pytest.raises(ValidationError):
        VerifierSettings(max_frames=0)


def test_select_indices_best_plus_even_spread():
    stamps = [i * 0.2 for i in range(50)]  # 10 s at 5 fps
    chosen = select_indices(stamps, 2.0, 6.0, 4.1, max_frames=5, margin=0.0)
    assert len(chosen) == 5
    assert 20 in chosen  # t=4.0 nearest the best frame
    assert all(2.0 - 1e-9 <= stamps[i] <= 6.0 + 1e-9 for i in chosen)
    assert chosen[0] == 10 and chosen[-1] == 30  # the window's ends


def test_select_indices_falls_back_to_whole_segment():
    stamps = [0.0, 0.2, 0.4]
    assert select_indices(stamps, 50.0, 60.0, 55.0, max_frames=8, margin=1.0) == [0, 1, 2]


def test_agreement_needs_matching_boxes_not_just_overlap():
    wide = (90.0, 120.0, 200.0, 180.0)  # overlaps PERSON enough to be grouped, not enough to be the same extent
    dets = [det(COCO, 0.8), det(LITE, 0.8, wide)]
    hyps = frame_hypotheses(dets, MODELS, VerifierSettings(group_iou=0.1), 480)
    assert all("agree" not in h.explanation for h in hyps)


def test_without_gateway_boxes_frames_must_agree_on_one_object():
    # Blips scattered over the frame (a flag flapping) do not add up to a person.
    places = [(0, 0), (400, 0), (0, 250), (400, 250)]
    boxes = [(PERSON[0] + dx, PERSON[1] + dy, PERSON[2] + dx, PERSON[3] + dy) for dx, dy in places]
    blips = [frame([det(COCO, 0.9, b), det(LITE, 0.9, b)], 0.2 * i) for i, b in enumerate(boxes)]
    frames = blips + [frame([], 0.2 * t) for t in range(4, 8)]
    scattered = decide(frames, TrackPrior(0.0, ()), S)
    assert scattered.decision == "rejected"  # anchored on one blip: 1 of the 4 frames needed
    assert scattered.person_frames == 1
    # The same evidence on one object does.
    steady = [frame([det(COCO, 0.9), det(LITE, 0.9)], 0.2 * i) for i in range(4)]
    steady += [frame([], 0.2 * t) for t in range(4, 8)]
    assert decide(steady, TrackPrior(0.0, ()), S).decision == "confirmed"


def test_clear_frames_plus_likely_frames_confirm_a_small_person():
    prior = TrackPrior(0.0, (PERSON,))
    clear = [det(COCO, 0.9), det(LITE, 0.8)]
    likely = [det(COCO, 0.7), det(COCO, 0.7, scale="2x2")]  # 0.42: 'maybe'
    frames = [frame(clear, 0.0), frame(clear, 1.0)] + [frame(likely, t) for t in range(2, 6)] + [
        frame([], t) for t in range(6, 8)]
    result = decide(frames, prior, S)
    assert result.decision == "confirmed"  # 2 clear + 4 x 0.5 = 4 needed
    only_likely = [frame(likely, t) for t in range(8)]
    assert decide(only_likely, prior, S).decision == "uncertain"  # a steady 'maybe' goes to review


# -- track spans: support measured where the gateway saw the person ---------------------------------------
def test_need_is_relative_to_the_frames_inside_the_track_span():
    # A short track (3 frames at 5 fps) in a segment with pre-roll: frames before the span show nobody.
    spans = ((2.0, 2.4),)
    clear = [det(COCO, 0.9), det(LITE, 0.8)]
    frames = [frame([], 1.0), frame([], 1.4), frame([], 1.8)] + [frame(clear, t) for t in (2.0, 2.2)] + [
        frame([], 2.4)]
    result = decide(frames, TrackPrior(2.2, (PERSON,), spans), S)
    assert result.decision == "confirmed"  # 2 of the 3 in-span frames; min_person_frames 2
    assert any("3 examined in the track's span" in r for r in result.reasons)
    # Without the span the pre-roll frames raise the bar to 40 % of 6 = 3 frames: 2 is half of it or more.
    assert decide(frames, TrackPrior(2.2, (PERSON,)), S).decision == "uncertain"


def test_one_clear_frame_in_the_span_is_still_not_enough():
    spans = ((2.0, 2.4),)
    frames = [frame([det(COCO, 0.9), det(LITE, 0.8)], 2.0), frame([], 2.2), frame([], 2.4)]
    result = decide(frames, TrackPrior(2.0, (PERSON,), spans), S)
    assert result.decision == "uncertain"  # 1 of the 2 needed: review
    assert result.person_frames == 1


def test_spans_that_miss_every_frame_fall_back_to_all_examined():
    frames = [frame([], 0.2 * i) for i in range(8)]
    assert frames_in_spans(frames, ((50.0, 51.0),)) == 8
    assert frames_in_spans(frames, ((0.0, 0.4),)) == 3
    assert frames_in_spans(frames[:1], ((5.0, 6.0),)) == 1  # a still


def test_select_indices_takes_frames_from_the_track_span():
    stamps = [i * 0.2 for i in range(20)]  # 4 s at 5 fps; the gateway's track covers 2.0-3.0
    chosen = select_indices(stamps, 2.0, 3.0, 2.6, max_frames=8, margin=1.0, spans=((2.0, 3.0),), min_span_frames=5)
    assert [round(stamps[i], 1) for i in chosen] == [2.0, 2.2, 2.4, 2.6, 2.8, 3.0]


def test_select_indices_widens_a_short_span_only_as_far_as_needed():
    stamps = [i * 0.2 for i in range(20)]
    chosen = select_indices(stamps, 2.0, 2.4, 2.4, max_frames=8, margin=1.0, spans=((2.0, 2.4),), min_span_frames=5)
    assert [round(stamps[i], 1) for i in chosen] == [1.8, 2.0, 2.2, 2.4, 2.6]
    # The margin bounds the widening.
    chosen = select_indices(stamps, 2.0, 2.4, 2.4, max_frames=8, margin=0.0, spans=((2.0, 2.4),), min_span_frames=5)
    assert [round(stamps[i], 1) for i in chosen] == [2.0, 2.2, 2.4]


# -- consistent walker: one model, corroborated by motion -------------------------------------------------
SMALL = (300.0, 200.0, 310.0, 225.0)  # 10 x 25 px: a far person SSDLite barely sees


def coco_only(score: float, box) -> list[ModelDetection]:
    return [det(COCO, score, box, "2x2"), det(LITE, 0.12, box, "3x3")]


def walk(scores, step_px: float = 12.0, dt: float = 0.8, box=SMALL) -> list[FrameFindings]:
    return [frame(coco_only(s, shifted(box, -step_px * i)), dt * i) for i, s in enumerate(scores)]


def test_one_model_alone_is_not_enough_without_the_walker_rule():
    frames = walk([0.5, 0.46, 0.48, 0.45, 0.5, 0.47, 0.44, 0.49])
    prior = TrackPrior(2.4, (shifted(SMALL, -36),))
    assert decide(frames, prior, VerifierSettings(walker_rule=False)).decision == "rejected"


def test_a_consistent_walker_seen_by_one_model_confirms():
    frames = walk([0.5, 0.46, 0.48, 0.45, 0.5, 0.47, 0.44, 0.49])  # 84 px = 3.4 box heights over 5.6 s
    result = decide(frames, TrackPrior(2.4, (shifted(SMALL, -36),)), S)
    assert result.decision == "confirmed"
    assert result.by_walker
    assert any("one model sees a person walking 3.4 box heights over 8 frames" in r for r in result.reasons)
    walker = find_walker(frames, [f.hypotheses for f in frames], S)
    assert walker is not None and walker.model == COCO and walker.straightness == pytest.approx(1.0)


def test_a_standing_object_is_not_a_walker():
    frames = walk([0.6] * 8, step_px=0.5)  # a parked car / a bush: in place
    assert find_walker(frames, [f.hypotheses for f in frames], S) is None
    assert decide(frames, TrackPrior(2.4, (SMALL,)), S).decision == "rejected"  # 0.6 at one scale: 0.29


def test_jitter_back_and_forth_is_not_a_walker():
    boxes = [shifted(SMALL, dx) for dx in (0, 20, 0, 20, 0, 20, 0, 30)]  # sways: path 170 px, net 30
    frames = [frame(coco_only(0.6, b), 0.8 * i) for i, b in enumerate(boxes)]
    assert find_walker(frames, [f.hypotheses for f in frames], S) is None


def test_a_walker_needs_enough_frames_score_and_a_consistent_size():
    two = walk([0.9, 0.9], step_px=30)
    assert find_walker(two, [f.hypotheses for f in two], S) is None  # 2 frames < walker_min_frames
    weak = walk([0.35, 0.4, 0.35, 0.4])
    assert find_walker(weak, [f.hypotheses for f in weak], S) is None  # mean 0.375 < 0.45
    sizes = [SMALL, shifted(SMALL, -12), (276.0, 150.0, 296.0, 225.0), shifted(SMALL, -36)]  # 25, 25, 75, 25 px
    mixed = [frame(coco_only(0.6, b), 0.8 * i) for i, b in enumerate(sizes)]
    assert find_walker(mixed, [f.hypotheses for f in mixed], S) is None


def test_a_teleporting_box_is_not_a_walker():
    frames = walk([0.6] * 4, step_px=150, dt=0.2)  # 6 box heights per 0.2 s
    assert find_walker(frames, [f.hypotheses for f in frames], S) is None


def test_a_still_can_never_be_a_walker():
    still = [frame(coco_only(0.8, SMALL), 0.0)]
    assert find_walker(still, [still[0].hypotheses], S) is None
    assert decide(still, TrackPrior(0.0, (SMALL,)), S).decision == "uncertain"  # one model, one frame: review


def test_a_walker_far_from_the_gateway_track_does_not_count():
    frames = walk([0.6] * 6)
    far_prior = TrackPrior(0.0, (shifted(SMALL, -280),))  # gateway saw something else, far away
    result = decide(frames, far_prior, S)
    assert result.decision == "rejected"
    assert result.person_frames == 0


# -- purity: the same findings, judged again, give the same verdict --------------------------------------
def _walker_clip() -> tuple[list[FrameFindings], TrackPrior]:
    return walk([0.5, 0.46, 0.48, 0.45, 0.5, 0.47, 0.44, 0.49]), TrackPrior(2.4, (shifted(SMALL, -36),))


def _remembered_and_away() -> tuple[list[FrameFindings], TrackPrior]:
    remembered = frame([det(COCO, 0.9), det(LITE, 0.9)], 0.0)
    remembered.hypotheses[0].fp_entry = "abc123"
    away = frame([det(COCO, 0.9, shifted(PERSON, 450)), det(LITE, 0.9, shifted(PERSON, 450))], 0.2)
    return [remembered, away], TrackPrior(0.0, (PERSON,))


def _no_gateway_boxes() -> tuple[list[FrameFindings], TrackPrior]:
    # The strongest object anchors the track; a second one far from it is marked away, on a copy.
    far = shifted(PERSON, 450)
    clear = [frame([det(COCO, 0.9), det(LITE, 0.9), det(COCO, 0.8, far), det(LITE, 0.8, far)], 0.2 * i)
             for i in range(3)]
    return [*clear, frame([det(COCO, 0.7), det(COCO, 0.7, scale="2x2")], 0.6)], TrackPrior(0.0, ())


@pytest.mark.parametrize("scenario", [_walker_clip, _remembered_and_away, _no_gateway_boxes])
def test_decide_changes_nothing_and_repeats_its_verdict(scenario) -> None:
    frames, prior = scenario()
    before = copy.deepcopy(frames), copy.deepcopy(prior)
    first = decide(frames, prior, S)
    assert (frames, prior) == before
    second = decide(frames, prior, S)
    assert (frames, prior) == before
    assert second == first


def test_the_walker_scenario_is_confirmed_by_the_walker_on_every_call() -> None:
    frames, prior = _walker_clip()
    verdicts = [decide(frames, prior, S) for _ in range(2)]
    assert [(v.decision, v.by_walker, v.clear_frames) for v in verdicts] == [("confirmed", True, ())] * 2


def test_clear_frames_are_the_frames_with_a_person_of_their_own() -> None:
    clear = [det(COCO, 0.9), det(LITE, 0.8)]
    likely = [det(COCO, 0.7), det(COCO, 0.7, scale="2x2")]
    frames = [frame(clear, 0.0), frame(likely, 0.2), frame([], 0.4), frame(clear, 0.6)]
    remembered = frame(clear, 0.8)
    remembered.hypotheses[0].fp_entry = "abc123"
    result = decide([*frames, remembered], TrackPrior(0.0, (PERSON,)), S)
    assert result.clear_frames == (0, 3)
