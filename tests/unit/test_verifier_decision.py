"""The verifier's decision rules on hand-written detections: no model, no image."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloud.verifier.decision import (
    FrameFindings,
    ModelDetection,
    TrackPrior,
    decide,
    frame_hypotheses,
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
    assert hyp.tier != "person"
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
    assert result.decision != "confirmed"
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
    assert decide(frames, TrackPrior(0.0, ()), S).decision != "confirmed"
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
