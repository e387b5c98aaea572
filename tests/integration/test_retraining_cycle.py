"""The whole retraining cycle on footage and pictures that packages ship: build, augment, train, evaluate
leave-clips-out, version, gate, package. Real detectors, real embedder, real files; nothing faked.

Labels are written here by hand, as a team would for its own footage: scikit-image's astronaut and
cameraman (people, boxes drawn by looking), its cat and coffee and OpenCV's baboon (no person), the first
10 s of OpenCV's vtest.avi (people throughout) and tree.avi (a tree in wind; a hand from 23 s, not used).
Tiny on purpose (a few minutes on 2 cores): it proves the cycle holds together, not that the head is good;
docs/retraining.md has the figures on ../shared/datasets.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import pytest
from skimage import data as skimage_data

from tests.footage import cut
from vigia.cli import main as vigia

pytestmark = pytest.mark.integration

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def bgr(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR) if rgb.ndim == 2 else cv2.cvtColor(rgb[..., :3], cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    if not (OPENCV_DATA / "vtest.avi").exists():
        pytest.skip("Debian's opencv-doc is not installed (make test installs it)")
    pytest.importorskip("openvino")
    from models.prepare import find_prepared

    for model in ("ssd-mobilenet-v2-coco", "ssdlite-person"):
        try:
            find_prepared(model)
        except FileNotFoundError as exc:
            pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("labels")
    (root / "images").mkdir()
    (root / "videos").mkdir()
    images = []

    def still(name: str, image, boxes: list[list[float]]) -> None:
        cv2.imwrite(str(root / "images" / name), image)
        images.append({"file": f"images/{name}", "width": image.shape[1], "height": image.shape[0],
                       "person_present": bool(boxes), "person_boxes_xyxy": boxes, "source": "test pictures"})

    astronaut = bgr(skimage_data.astronaut())
    still("astronaut.png", astronaut, [[15, 10, 365, 512]])
    still("astronaut_mirrored.png", cv2.flip(astronaut, 1), [[147, 10, 497, 512]])
    still("cameraman.png", bgr(skimage_data.camera()), [[0, 60, 302, 512]])
    still("chelsea.png", bgr(skimage_data.chelsea()), [])
    still("coffee.png", bgr(skimage_data.coffee()), [])
    still("baboon.png", cv2.imread(str(OPENCV_DATA / "baboon.jpg")), [])
    (root / "labels.json").write_text(json.dumps({"format": "test", "images": images}))
    cut(OPENCV_DATA / "vtest.avi", root / "videos" / "vtest_10s.avi", 10.0)
    cut(OPENCV_DATA / "tree.avi", root / "videos" / "tree_20s.avi", 20.0)
    videos = [{"file": "videos/vtest_10s.avi", "person_present": True, "person_intervals_s": [[0.0, 10.0]]},
              {"file": "videos/tree_20s.avi", "person_present": False, "person_intervals_s": []}]
    (root / "videos" / "labels.json").write_text(json.dumps({"videos": videos}))
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_train_evaluate_version_gate_package(labels: Path, tmp_path: Path) -> None:
    from greengrass.learned_head import package_head
    from models.learned.registry import Registry
    from models.training.dataset_format import read_samples
    from models.training.split import check_folds

    ds = tmp_path / "training-set"
    assert vigia(["dataset", "build", "--labels", str(labels), "--out", str(ds), "--folds", "2",
                  "--sample-fps", "1", "--contact-sheet"]) == 0
    manifest = json.loads((ds / "dataset.json").read_text())
    assert manifest["samples_sha256"] == sha256(ds / "samples.jsonl")
    rows = read_samples(ds / "samples.jsonl")
    assert {r.label for r in rows} == {"person", "negative"}
    check_folds(rows)  # no clip or camera view on both sides of a fold
    assert (ds / "contact_sheet.png").stat().st_size > 0

    # Reproducible from the training set and the seed: the same bytes twice.
    for out in ("head-a", "head-b"):
        assert vigia(["train", "--dataset", str(ds), "--out", str(tmp_path / out), "--augment", "1",
                      "--seed", "7"]) == 0
    assert sha256(tmp_path / "head-a" / "head.json") == sha256(tmp_path / "head-b" / "head.json")
    training = json.loads((tmp_path / "head-a" / "training-report.json").read_text())
    assert training["dataset_sha256"] == manifest["samples_sha256"] and training["seed"] == 7

    rules, learned = tmp_path / "eval-rules", tmp_path / "eval-learned"
    assert vigia(["eval", "--stage", "system", "--dataset", str(labels), "--out", str(rules)]) == 0
    assert vigia(["eval", "--stage", "system", "--dataset", str(labels), "--out", str(learned),
                  "--learned-cv", str(ds), "--augment", "1", "--seed", "7"]) == 0
    report = json.loads((learned / "report.json").read_text())
    # Every missed still and false alarm says what the gateway sent and what the verifier made of it.
    stills = report["system"]["images"]
    assert set(stills["errors"]) == set(stills["missed_files"]) | set(stills["false_alarm_files"])
    for candidates in stills["errors"].values():
        assert all(c["verdict"] in ("confirmed", "uncertain", "rejected") and c["reasons"] for c in candidates)
    group_fold = {r.group: r.fold for r in rows}
    item_group = {r.item: r.group for r in rows}
    for item, head in report["learned"]["heads_per_item"].items():
        if item in item_group:  # an item that gave training samples is judged by the head without its fold
            fold = group_fold[item_group[item]]
            assert head in (f"fold {fold} held out", f"rules (no head could be trained without fold {fold})")
    assert any("judged by the learned head" in r for c in report["system"]["clips"]["per_clip"]
               for e in c["events"] for r in e["reasons"]) or not report["system"]["verifier"]["candidates"]

    registry_dir = tmp_path / "registry"
    assert vigia(["train", "--dataset", str(ds), "--out", str(tmp_path / "head-c"), "--augment", "1", "--seed", "7",
                  "--register", "--registry", str(registry_dir), "--eval-report", str(learned / "report.json")]) == 0
    registry = Registry(registry_dir)
    [entry] = registry.versions()
    assert entry.version == "1.0.0" and entry.dataset_sha256 == manifest["samples_sha256"]
    assert entry.metrics["eval"]["images"] == json.loads((learned / "summary.json").read_text())["images"]
    # A report run with another seed is refused as this version's evaluation.
    assert vigia(["train", "--dataset", str(ds), "--out", str(tmp_path / "head-d"), "--seed", "8", "--register",
                  "--registry", str(registry_dir), "--eval-report", str(learned / "report.json")]) == 2

    assert vigia(["gate", "--set-baseline", str(rules / "summary.json"), "--registry", str(registry_dir)]) == 0
    code = vigia(["gate", "--candidate", "1.0.0", "--registry", str(registry_dir), "--out", str(tmp_path / "gate")])
    gate = json.loads((tmp_path / "gate" / "gate.json").read_text())
    assert code == (0 if gate["passed"] else 1)
    assert registry.get("1.0.0").gate is not None and registry.get("1.0.0").gate.passed == gate["passed"]
    assert registry.verify() == []

    packaged = package_head(registry.artifact_path("1.0.0"), "1.0.0", tmp_path / "greengrass")
    recipe = json.loads(packaged.recipe_path.read_text())
    assert packaged.sha256_hex == entry.artifact_sha256
    assert recipe["ComponentVersion"] == "1.0.0" and entry.artifact_sha256 in json.dumps(recipe)
