"""The split rule: no group and no camera view on both sides of any fold; stills cut from a clip follow it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from models.training.split import (
    SplitLeak,
    assert_disjoint,
    assign_folds,
    camera_of,
    check_folds,
    clip_group,
    fold_of,
    groups_of,
    image_group,
    load_known_views,
    split_by_fold,
)


@dataclass
class Row:
    group: str
    camera: str | None
    fold: int = -1


def _rows_for(groups: list[str], k: int, seed: int) -> list[Row]:
    folds = assign_folds(groups, k, seed)
    return [Row(g, camera_of(g), folds[g]) for g in groups]


def test_clips_of_one_view_share_a_group() -> None:
    assert clip_group("videos/psu_getout.avi") == clip_group("psu_getin_parking.mp4") \
        == clip_group("videos/psu_walk_parking.mp4") == "view:psu_parking_lot"
    assert clip_group("videos/boats_inflatable.mp4") == "clip:boats_inflatable.mp4"
    assert clip_group("videos/boats_inflatable.mp4", camera="dock") == "camera:dock"


def test_stills_cut_from_a_clip_follow_the_clip() -> None:
    clips = ["vtest.avi", "tree.avi", "TUD-Campus.mp4"]
    pets = image_group("images/pets09s2l1_f0100.jpg", "frame 100 (1-based) decoded from videos/vtest.avi; "
                       "OpenCV samples/data/vtest.avi", clips)
    tree = image_group("images/opencv_tree_f003.jpg", "frame 3 decoded from videos/tree.avi", clips)
    assert pets == clip_group("videos/vtest.avi")
    assert tree == clip_group("videos/tree.avi")
    assert image_group("images/coco_1.jpg", "coco128 images/train2017/1.jpg", clips) == "image:images/coco_1.jpg"
    # A name inside a longer one is not a match ("tree.avi" in "psu_tree.avi.bak" would be wrong).
    assert image_group("x.jpg", "from psu_tree.avi", clips).startswith("image:")
    assert image_group("x.jpg", "decoded from videos/tree.avi", clips, camera="lobby") == "camera:lobby"


def test_known_views_file_is_names_only() -> None:
    views = load_known_views()
    assert views["psu_getout.avi"] == views["psu_walk_parking.mp4"]
    assert all("/" not in name for name in views)


def test_folds_never_share_a_group_or_camera_and_are_balanced() -> None:
    groups = ["view:lot"] * 40 + ["clip:a.avi"] * 30 + ["clip:b.avi"] * 20 + ["clip:c.avi"] * 20 \
        + [f"image:{i}.jpg" for i in range(50)]
    rows = _rows_for(groups, 5, seed=0)
    check_folds(rows)
    for fold in range(5):
        train, test = split_by_fold(rows, fold)
        assert not {r.group for r in train} & {r.group for r in test}
    sizes = sorted(sum(1 for r in rows if fold_of(r) == f) for f in range(5))
    assert sizes[-1] - sizes[0] <= 40  # the largest group alone sets the spread
    assert set(groups_of(rows)) == set(groups)


def test_folds_are_deterministic_for_a_seed() -> None:
    groups = [f"clip:{i}" for i in range(30) for _ in range(i % 4 + 1)]
    assert assign_folds(groups, 5, seed=3) == assign_folds(list(groups), 5, seed=3)
    assert assign_folds(groups, 5, seed=3) != assign_folds(groups, 5, seed=4)


def test_assert_disjoint_catches_a_shared_group_or_camera() -> None:
    with pytest.raises(SplitLeak, match="groups"):
        assert_disjoint([Row("clip:a", "a")], [Row("clip:a", "a")])
    with pytest.raises(SplitLeak, match="camera"):
        assert_disjoint([Row("clip:a", "lot")], [Row("clip:b", "lot")])
    assert_disjoint([Row("image:1", None)], [Row("image:2", None)])
    with pytest.raises(SplitLeak):
        check_folds([Row("clip:a", "a", 0), Row("clip:a", "a", 1)])


def test_fewer_than_two_folds_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        assign_folds(["clip:a"], 1)
