"""The learned stage's pieces: the crop, the head (train, save, load, refuse), and the decision it drives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cloud.verifier.decision import TrackPrior, decide, learned_tiers
from cloud.verifier.settings import VerifierSettings
from models.learned.crops import CROP_SIZE, context_crop
from models.learned.head import LearnedHead, TrainConfig, train_head
from models.learned.training import fold_scores
from tests.unit.test_verifier_decision import SMALL, S, shifted, walk


# -- crop -------------------------------------------------------------------------------------------------
def test_crop_is_square_centred_and_padded_at_the_edge():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[100:140, 150:170] = 255  # a 20 x 40 bright box
    crop = context_crop(frame, (150, 100, 170, 140))
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    # 40 px box + 25 % context each side = 60 px window: the box is the middle 2/3 of the height, 1/3 of the width
    rows = np.where(crop[:, CROP_SIZE // 2, 0] > 128)[0]
    cols = np.where(crop[CROP_SIZE // 2, :, 0] > 128)[0]
    assert abs(rows[0] - CROP_SIZE / 6) <= 2 and abs(rows[-1] - CROP_SIZE * 5 / 6) <= 2
    assert abs(cols[0] - CROP_SIZE / 3) <= 2 and abs(cols[-1] - CROP_SIZE * 2 / 3) <= 2
    corner = context_crop(frame, (0, 0, 20, 40))  # leaves the frame: replicated edge, same size
    assert corner.shape == (CROP_SIZE, CROP_SIZE, 3)
    with pytest.raises(ValueError, match="empty box"):
        context_crop(frame, (10, 10, 10, 30))
    with pytest.raises(ValueError, match="outside"):
        context_crop(frame, (400, 300, 420, 340))


# -- head -------------------------------------------------------------------------------------------------
def separable(n: int = 120, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(float)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[:, 0] += 2.5 * (labels * 2 - 1)  # the embedding's first dimension carries the class
    return x, labels


def test_head_learns_reproducibly_and_round_trips(tmp_path):
    x, labels = separable()
    kw = dict(embedder="e1", numeric_features=["score"], config=TrainConfig(), seed=3)
    head = train_head(x, labels, np.ones(len(labels)), **kw)
    again = train_head(x, labels, np.ones(len(labels)), **kw)
    np.testing.assert_array_equal(head.weights, again.weights)
    probs = head.predict(x[:, :5], [{"score": float(v)} for v in x[:, 5]])
    assert ((probs >= 0.5) == (labels == 1)).mean() > 0.9
    sha = head.save(tmp_path / "head.json")
    loaded = LearnedHead.load(tmp_path / "head.json", sha)
    np.testing.assert_allclose(loaded.predict(x[:, :5], [{"score": float(v)} for v in x[:, 5]]), probs)
    (tmp_path / "head.json").write_text((tmp_path / "head.json").read_text().replace('"e1"', '"e2"'))
    with pytest.raises(ValueError, match="sha256"):
        LearnedHead.load(tmp_path / "head.json", sha)
    with pytest.raises(ValueError, match="both persons and negatives"):
        train_head(x, np.zeros(len(labels)), np.ones(len(labels)), **kw)


def test_fold_scores_never_score_a_fold_with_a_head_that_saw_it():
    x, labels = separable(60)
    folds = np.arange(60) // 10  # six folds of ten
    # Poison fold 0: its labels are inverted. A head that saw it would fit it; out of fold it cannot.
    poisoned = labels.copy()
    poisoned[:10] = 1 - poisoned[:10]
    augmented = (x[:10] + 0.01, poisoned[:10], np.ones(10), folds[:10])  # augmented twins of fold 0 follow it out
    probs, heads = fold_scores(x, poisoned, np.ones(60), folds, augmented, 6, [{}] * 60, embedder="e",
                               numeric_features=[], config=TrainConfig(l2=0.1))
    assert sorted(heads) == list(range(6))
    held_out_right = ((probs[:10] >= 0.5) == (labels[:10] == 1)).mean()
    assert held_out_right > 0.8  # scored by heads trained on the other folds, it follows the true class
    # A fold whose complement holds one class only gets no head and no score, never a leaked one.
    one_class = np.where(folds == 0, poisoned, 1.0)
    probs, heads = fold_scores(x, one_class, np.ones(60), folds, augmented, 6, [{}] * 60,
                               embedder="e", numeric_features=[], config=TrainConfig(l2=0.1))
    assert sorted(heads) == [1, 2, 3, 4, 5]  # without fold 0 only persons remain
    assert np.isnan(probs[:10]).all() and not np.isnan(probs[10:]).any()


# -- the decision the head drives ------------------------------------------------------------------------
def with_learned(frames, p: float):
    return [replace(f, hypotheses=[replace(h, learned=p) for h in f.hypotheses]) for f in frames]


JUDGE = S.model_copy(update={"learned_mode": "judge"})


def test_learned_head_judges_instead_of_the_walker_rule():
    frames = walk([0.5, 0.46, 0.48, 0.45, 0.5, 0.47, 0.44, 0.49])
    prior = TrackPrior(2.4, (shifted(SMALL, -36),))
    assert decide(frames, prior, S).decision == "confirmed"  # the walker rule alone confirms it
    # A walking animal: the head says no person, so the walk no longer confirms.
    animal = decide(with_learned(frames, 0.1), prior, JUDGE, learned=True)
    assert animal.decision == "rejected"
    assert not animal.by_walker
    # A person the head believes: confirmed on its own frames, not by the walker rule.
    person = decide(with_learned(frames, 0.9), prior, JUDGE, learned=True)
    assert person.decision == "confirmed" and not person.by_walker
    assert any("learned head P(person) 0.90" in r for r in person.reasons)
    # Half-believed: review, not an alert.
    assert decide(with_learned(frames, 0.4), prior, JUDGE, learned=True).decision == "uncertain"


def test_learned_head_as_a_veto_over_the_rules():
    frames = walk([0.5, 0.46, 0.48, 0.45, 0.5, 0.47, 0.44, 0.49])
    prior = TrackPrior(2.4, (shifted(SMALL, -36),))
    assert S.learned_mode == "veto"
    # Unlike a person (P < learned_veto): removed, so the walk cannot confirm.
    assert decide(with_learned(frames, 0.1), prior, S, learned=True).decision == "rejected"
    # Undecided: the rules stand, the walker rule included.
    undecided = decide(with_learned(frames, 0.4), prior, S, learned=True)
    assert undecided.decision == "confirmed" and undecided.by_walker
    # Sure of it: a person on its own frames, whatever the rules' discount of a single model.
    sure = decide(with_learned(frames, 0.9), prior, S, learned=True)
    assert sure.decision == "confirmed" and not sure.by_walker
    promoted = learned_tiers(with_learned(frames, 0.9), S)[0].hypotheses[0]
    assert promoted.tier == "person" and "learned head P(person) 0.90 over" in promoted.explanation


def test_learned_tiers_do_not_touch_their_input_and_unscored_is_nothing():
    frames = walk([0.9, 0.9, 0.9])
    tiers = learned_tiers(frames, JUDGE)
    assert all(h.tier == "none" and h.evidence == 0.0 for f in tiers for h in f.hypotheses)
    assert frames[0].hypotheses[0].evidence > 0.3  # the input keeps its rule evidence
    # In veto mode a hypothesis the head never saw keeps the rules' judgement.
    assert [h.tier for h in learned_tiers(frames, S)[0].hypotheses] == [h.tier for h in frames[0].hypotheses]


def test_learned_thresholds_are_ordered():
    with pytest.raises(ValueError, match="learned_maybe"):
        VerifierSettings(learned_person=0.4, learned_maybe=0.5)
