"""Leave-clips-out in `vigia eval --learned-cv`: each item judged by the head of the fold that held its group out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.evaluation.dataset import ClipItem, Dataset, ImageItem
from models.learned.head import LearnedHead
from models.learned.training import Trained, TrainingSet
from models.training.dataset_format import SampleRow
from vigia.learned_eval import CrossValidatedHeads, item_group


def row(item: str, group: str, fold: int) -> SampleRow:
    return SampleRow(id=f"{item}-{fold}", label="person", label_source="boxes", weight=1.0, source="clips",
                     item=item, group=group, fold=fold, frame_w=64, frame_h=64, box=[1, 1, 9, 20], crop="c.png")


def head(name: str) -> LearnedHead:
    return LearnedHead(name, [], np.zeros(1), np.ones(1), np.zeros(1), 0.0)


def test_each_item_gets_the_head_that_never_saw_its_clip_or_view(tmp_path: Path) -> None:
    root = tmp_path / "labels"
    ds = Dataset(root, images=[
        ImageItem(root / "images/pets_f1.jpg", True, [], source="frames of videos/vtest.avi"),
        ImageItem(root / "images/lone.jpg", False, []),
    ], clips=[
        ClipItem(root / "videos/vtest.avi", [(0.0, 1.0)]),
        ClipItem(root / "videos/psu_getin_parking.mp4", [(0.0, 1.0)]),  # same lot as psu_getout.avi
        ClipItem(root / "videos/unseen.mp4", []),
    ])
    ts = TrainingSet(tmp_path, [row("videos/vtest.avi", item_group(ds, ds.clips[0]), 0),
                                row("videos/psu_getout.avi", item_group(ds, ds.clips[1]), 1)], "0" * 64, [])
    heads = {0: head("without-fold-0"), 1: head("without-fold-1")}
    cv = CrossValidatedHeads(ts, Trained(head("all"), heads, np.zeros(2), {}), "protocol")

    assert cv.head_for(ds, ds.clips[0]).embedder == "without-fold-0"
    assert cv.head_for(ds, ds.images[0]).embedder == "without-fold-0"  # a still cut from vtest follows it
    assert cv.head_for(ds, ds.clips[1]).embedder == "without-fold-1"  # the parking lot's other recording
    assert cv.head_for(ds, ds.clips[2]).embedder == "all"  # nothing of it was trained on
    assert cv.head_for(ds, ds.images[1]).embedder == "all"
    assert cv.assigned["videos/unseen.mp4"].startswith("all")
    assert cv.assigned["videos/vtest.avi"] == "fold 0 held out"
