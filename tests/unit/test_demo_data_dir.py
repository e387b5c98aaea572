"""The demo's data dir: created or reused, never someone else's folder, nothing deleted; runs are recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigia.cli import main
from vigia.demo_store import MARKER_NAME, DemoDataDir, NotADataDir


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_missing_or_empty_folder_becomes_a_data_dir(tmp_path: Path) -> None:
    for root in (tmp_path / "new" / "demo", tmp_path / "empty"):
        if root.name == "empty":
            root.mkdir()
        store = DemoDataDir.claim(root)
        assert json.loads((root / MARKER_NAME).read_text())["kind"] == "vigia-demo"
        assert DemoDataDir.claim(root) == store  # and it is the demo's from then on


def test_a_foreign_folder_is_refused_and_left_exactly_as_it_was(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_bytes(b"private")
    (home / "notes.txt").write_text("mine")
    before = _tree(home)
    with pytest.raises(NotADataDir, match="not empty and is not a Vigia data dir"):
        DemoDataDir.claim(home)
    assert _tree(home) == before


def test_a_file_and_another_kind_of_vigia_folder_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(NotADataDir, match="is a file"):
        DemoDataDir.claim(file)
    other = tmp_path / "other"
    other.mkdir()
    (other / MARKER_NAME).write_text(json.dumps({"kind": "vigia-edge"}))
    with pytest.raises(NotADataDir, match="'vigia-edge', not the demo's"):
        DemoDataDir.claim(other)
    (other / MARKER_NAME).write_text("{not json")
    with pytest.raises(NotADataDir, match="unreadable"):
        DemoDataDir.claim(other)


def test_an_older_demos_folder_is_adopted_without_touching_its_records(tmp_path: Path) -> None:
    root = tmp_path / "var-demo"
    (root / "edge").mkdir(parents=True)
    (root / "cloud").mkdir()
    (root / "cloud" / "events.sqlite3").write_bytes(b"SQLite format 3\x00")
    before = _tree(root)
    DemoDataDir.claim(root)
    after = _tree(root)
    assert set(after) == set(before) | {MARKER_NAME}
    assert all(after[name] == data for name, data in before.items())


def test_runs_are_appended_and_run_ids_never_repeat(tmp_path: Path) -> None:
    store = DemoDataDir.claim(tmp_path / "d")
    assert store.runs() == []
    first = store.new_run_id()
    store.record_run({"run_id": first, "events": [{"event_id": "A"}]})
    second = store.new_run_id()
    assert second != first
    with store.runs_path.open("a") as handle:
        handle.write("{damaged\n")
    store.record_run({"run_id": second, "events": []})
    assert [run["run_id"] for run in store.runs()] == [first, second]


def test_vigia_demo_refuses_a_foreign_folder_with_exit_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--data-dir", str(tmp_path), "--source", str(tmp_path / "keep.txt")]) == 2
    assert "is not a Vigia data dir" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
