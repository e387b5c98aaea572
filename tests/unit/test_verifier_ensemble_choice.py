"""Choosing the verifier's ensemble (`--verifier-models`, VIGIA_VERIFIER_MODELS) and keeping the learned head
to the ensemble it was trained for."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cloud.runtime.verifier_adapter import chosen_settings
from cloud.verifier.learned import LearnedStage
from cloud.verifier.settings import VerifierConfigError, VerifierEnv, parse_ensemble
from models.learned.head import LearnedHead


def test_an_ensemble_is_catalog_ids_separated_by_commas() -> None:
    assert parse_ensemble(" ssd-mobilenet-v2-coco, nanodet-m ") == ("ssd-mobilenet-v2-coco", "nanodet-m")
    with pytest.raises(ValueError, match="unknown yolo-x"):
        parse_ensemble("ssdlite-person,yolo-x")
    with pytest.raises(ValueError, match="none named"):
        parse_ensemble(" , ")


def stage_for(models: list[str]) -> LearnedStage:
    features = ["evidence", *(f"{m}_{kind}" for m in models for kind in ("score", "scales", "full")), "members"]
    head = LearnedHead("embedder-x", features, np.zeros(3), np.ones(3), np.zeros(3), 0.0)
    return LearnedStage(head, SimpleNamespace(identity="embedder-x"))  # type: ignore[arg-type]


def test_a_head_runs_only_with_the_ensemble_whose_features_it_learned() -> None:
    stage = stage_for(["ssd-mobilenet-v2-coco", "ssdlite-person"])
    stage.check_ensemble(["ssdlite-person", "ssd-mobilenet-v2-coco"])  # order does not matter
    with pytest.raises(ValueError, match=r"trained on the ensemble .*runs .*nanodet-m"):
        stage.check_ensemble(["ssd-mobilenet-v2-coco", "ssdlite-person", "nanodet-m"])
    with pytest.raises(ValueError, match="vigia dataset build --verifier-models"):
        stage.check_ensemble(["ssd-mobilenet-v2-coco"])
    with pytest.raises(ValueError):  # scoring checks it too: the head may be swapped between candidates
        stage.score([], [], ["ssd-mobilenet-v2-coco"], None)  # type: ignore[arg-type]


def test_a_head_names_its_ensemble_in_catalog_order() -> None:
    stage = stage_for(["nanodet-m", "ssdlite-person", "ssd-mobilenet-v2-coco"])
    assert stage.head.ensemble == ("ssd-mobilenet-v2-coco", "ssdlite-person", "nanodet-m")


def test_the_ensemble_follows_the_head_unless_one_is_named() -> None:
    three = stage_for(["ssd-mobilenet-v2-coco", "ssdlite-person", "nanodet-m"])
    assert chosen_settings(VerifierEnv(device="cpu")).models == ("ssd-mobilenet-v2-coco", "ssdlite-person")
    assert chosen_settings(VerifierEnv(device="cpu"), three).models == three.head.ensemble
    named = VerifierEnv(device="cpu", models=("ssd-mobilenet-v2-coco", "ssdlite-person"))
    with pytest.raises(VerifierConfigError, match="VIGIA_VERIFIER_LEARNED_HEAD with VIGIA_VERIFIER_MODELS"):
        chosen_settings(named, three)
    with pytest.raises(VerifierConfigError, match="INT8"):  # the head's ensemble on CUDA: checked as any other
        chosen_settings(VerifierEnv(device="cuda", precision="INT8"), three)
