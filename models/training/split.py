"""The split rule: near-duplicate frames never sit on both sides of a fold.

Every sample carries a `group`, the unit that goes whole to one fold:
- a labels entry's `camera` field, when given, names the group (it overrides everything below);
- a clip is one group (every frame of it), and clips that show the same camera view (known_views.json)
  share one group named after the view;
- a still cut from a clip (its labels `source` names the clip file) joins that clip's group;
- any other still is a group of its own.
Groups are dealt to k folds, largest first, each to the fold with the fewest samples so far (ties broken
by a seeded hash), so folds are balanced by sample count and the result is deterministic for a seed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

KNOWN_VIEWS_FILE = Path(__file__).with_name("known_views.json")
SPLIT_RULE = __doc__.strip() if __doc__ else ""


class Grouped(Protocol):
    group: str
    camera: str | None
    fold: int


class SplitLeak(AssertionError):
    """A group or camera view on both sides of a split."""


@lru_cache(maxsize=4)
def load_known_views(path: Path = KNOWN_VIEWS_FILE) -> dict[str, str]:
    """Clip file name -> view name."""
    views = json.loads(Path(path).read_text())["views"]
    return {clip: view for view, clips in views.items() for clip in clips}


def clip_group(clip_file: str, camera: str | None = None, views: dict[str, str] | None = None) -> str:
    """The group of a clip (its file name, relative path or base name)."""
    if camera:
        return f"camera:{camera}"
    views = load_known_views() if views is None else views
    name = Path(clip_file).name
    return f"view:{views[name]}" if name in views else f"clip:{name}"


def image_group(image_file: str, source: str | None, clip_names: Iterable[str], camera: str | None = None,
                views: dict[str, str] | None = None) -> str:
    """The group of a still: its camera, else the clip its `source` names, else the still alone."""
    if camera:
        return f"camera:{camera}"
    if source:
        for name in sorted(set(clip_names), key=len, reverse=True):
            if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", source):
                return clip_group(name, None, views)
    return f"image:{image_file}"


def camera_of(group: str) -> str | None:
    """The camera view a group stands for (None for a lone still)."""
    kind, _, name = group.partition(":")
    return None if kind == "image" else name


def _tiebreak(name: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}|{name}".encode()).hexdigest()


def assign_folds(groups: Sequence[str], k: int, seed: int = 0) -> dict[str, int]:
    """group -> fold for the group of every sample (`groups` has one entry per sample)."""
    if k < 2:
        raise ValueError(f"folds must be at least 2, got {k}")
    sizes: dict[str, int] = defaultdict(int)
    for g in groups:
        sizes[g] += 1
    totals = [0] * k
    fold_rank = sorted(range(k), key=lambda f: _tiebreak(f"fold{f}", seed))  # seeded order among equal folds
    out: dict[str, int] = {}
    for g in sorted(sizes, key=lambda g: (-sizes[g], _tiebreak(g, seed))):
        fold = min(fold_rank, key=lambda f: (totals[f], fold_rank.index(f)))
        out[g] = fold
        totals[fold] += sizes[g]
    return out


def groups_of(rows: Iterable[Grouped]) -> dict[str, list[Grouped]]:
    """Rows by group, for leave-groups-out cross-validation."""
    out: dict[str, list[Grouped]] = defaultdict(list)
    for r in rows:
        out[r.group].append(r)
    return dict(out)


def fold_of(row: Grouped) -> int:
    return row.fold


def split_by_fold(rows: Sequence[Grouped], fold: int) -> tuple[list[Grouped], list[Grouped]]:
    """(train, held out) for one fold; checked disjoint."""
    train = [r for r in rows if r.fold != fold]
    test = [r for r in rows if r.fold == fold]
    assert_disjoint(train, test)
    return train, test


def assert_disjoint(rows_a: Iterable[Grouped], rows_b: Iterable[Grouped]) -> None:
    """SplitLeak when a group or a camera view has samples on both sides."""
    a, b = list(rows_a), list(rows_b)
    shared = {r.group for r in a} & {r.group for r in b}
    if shared:
        raise SplitLeak(f"groups on both sides of the split: {sorted(shared)[:5]}")
    cams = {r.camera for r in a if r.camera} & {r.camera for r in b if r.camera}
    if cams:
        raise SplitLeak(f"camera views on both sides of the split: {sorted(cams)[:5]}")


def check_folds(rows: Sequence[Grouped]) -> None:
    """Every fold against the rest: no group or camera view on both sides."""
    for fold in sorted({r.fold for r in rows}):
        split_by_fold(rows, fold)
