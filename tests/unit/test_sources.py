from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.sources import SourceError, iter_clip_uris, open_clip


def test_unreadable_inputs_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such"):
        open_clip(str(tmp_path / "missing.avi"))
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        open_clip(str(tmp_path / "empty.avi"))
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x01junk" * 500)
    with pytest.raises(SourceError):
        clip = open_clip(str(tmp_path / "junk.mp4"))
        list(clip.frames(5))


def test_sampling_follows_time_stamps(tmp_path: Path) -> None:
    path = tmp_path / "c.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(100):  # 4 s at 25 fps
        writer.write(np.full((48, 64, 3), i, np.uint8))
    writer.release()
    frames = list(open_clip(str(path)).frames(5.0))
    assert len(frames) == 20
    gaps = np.diff([f.ts for f in frames])
    assert np.allclose(gaps, 0.2, atol=0.041)


def test_tree_avi_time_stamps_are_real_not_index_over_fps(tree_clip: Path) -> None:
    frames = list(open_clip(str(tree_clip)).frames(5.0))
    assert 60 <= len(frames) <= 68  # 68 coded frames, ~2.3 a second
    assert 29.0 <= frames[-1].ts <= 29.7


def test_folder_is_read_in_name_order(tmp_path: Path) -> None:
    for name in ("b.mp4", "a.avi", "notes.txt", "c.mkv"):
        (tmp_path / name).write_bytes(b"x")
    assert [Path(u).name for u in iter_clip_uris(str(tmp_path))] == ["a.avi", "b.mp4", "c.mkv"]
    assert list(iter_clip_uris("rtsp://cam.local/stream")) == ["rtsp://cam.local/stream"]
