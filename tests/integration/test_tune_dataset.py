"""`vigia tune --dataset` on ../shared/datasets (beside the clone in CI; skipped with the reason when absent).

To stay well under a minute on a shared 2-core machine this scores a subset of the stills only (20 images
with people, 20 without, in file order); the whole set (69 / 78 images and the clips) is what the command
runs by default. Scores come from the real gateway model, read in place from the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloud.tuning import TuningSettings, clopper_pearson_lower
from vigia.commands.tune_cmd import dataset_report

pytestmark = pytest.mark.integration

DATASETS = Path(os.environ.get("VIGIA_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    if not (DATASETS / "labels.json").exists():
        pytest.skip(f"no labeled dataset at {DATASETS} (set VIGIA_DATASETS or put shared/datasets beside the clone)")
    from models.evaluation.dataset import load_dataset
    from vigia.tune_dataset import score_dataset

    return score_dataset(load_dataset(DATASETS), lambda m: None, stills_only=True, max_images=40,
                         work_dir=tmp_path_factory.mktemp("tune"))


def test_refuses_to_act_on_too_few_labeled_people(scores):
    assert sum(s.person for s in scores.stills) == 20 and len(scores.stills) == 40
    report, results = dataset_report(scores, TuningSettings())
    stills = results["stills"]
    assert stills.status == "too-few-labels" and stills.chosen is None and not stills.valid
    assert stills.message.startswith("20 labeled people, fewer than the 30 needed")
    # before is still reported, at the camera's default still_threshold
    assert stills.before.threshold == 0.3
    assert stills.before.people_kept + stills.before.people_missed == 20
    cv = report["parts"]["stills"]["cross_validation"]
    assert cv["thresholds"] == [None] * 5  # every training fold has fewer than 30 people too
    assert cv["after"] == cv["before"]


def test_acts_within_the_bound_and_reports_held_out_figures(scores):
    settings = TuningSettings(target=0.6, min_people=10)
    report, results = dataset_report(scores, settings, folds=5)
    stills = results["stills"]
    assert stills.status in ("recommended", "unchanged")
    assert stills.after.recall_lower >= 0.6
    assert stills.after.recall_lower == pytest.approx(clopper_pearson_lower(stills.after.people_kept, 20))
    passing = [p for p in stills.curve if p.recall_lower >= 0.6]
    assert stills.after.false_alerts == min(p.false_alerts for p in passing)
    cv = report["parts"]["stills"]["cross_validation"]
    # every image is held out exactly once: the held-out 'before' equals the whole set's 'before'
    assert cv["before"] == {"people": 20, "people_missed": stills.before.people_missed,
                            "false_alerts": stills.before.false_alerts}
    assert cv["folds"] == 5 and len(cv["thresholds"]) == 5


def test_stills_are_scored_as_auto_tiling_alerts_at_any_bar() -> None:
    from contracts import CameraConfig
    from vigia.tune_dataset import STILLS_CAMERA, scoring_config

    config = scoring_config(CameraConfig())
    # auto looks at the tiles whenever the full frame misses the bar, so a still's score is the best of both
    assert config.for_camera(STILLS_CAMERA).tiling == "always"
    assert config.for_camera("a-clip").tiling == "auto"  # clips keep zooming on motion
    assert config.for_camera(STILLS_CAMERA).still_threshold == 0.05
    assert scoring_config(CameraConfig(tiling="off")).for_camera(STILLS_CAMERA).tiling == "off"
