from __future__ import annotations

import logging
import random
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_agent.sources import Frame, LiveSource, SourceError, SourceGap, is_live, iter_clip_uris, open_clip
from tests.footage import ramp_clip


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
    ramp_clip(path, 100, 25.0)  # 4 s at 25 fps
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


def test_file_frames_carry_wall_time(tmp_path: Path) -> None:
    path = tmp_path / "c.avi"
    ramp_clip(path, 20, 10.0, 10)
    clip = open_clip(str(path))
    frames = list(clip.frames(5.0))
    assert [round(f.ts, 3) for f in frames[:3]] == [0.0, 0.2, 0.4]
    assert all(f.wall == clip.wall_start + f.ts for f in frames)
    assert clip.wall_start == pytest.approx(path.stat().st_mtime - 2.0, abs=0.01)


@pytest.mark.parametrize("source", ["", "   ", "\t\n"])
def test_empty_source_is_refused(source: str) -> None:
    with pytest.raises(SourceError, match="no source given"):
        list(iter_clip_uris(source))
    with pytest.raises(SourceError, match="no stream URL"):
        LiveSource(source, "cam", 5.0)


def test_missing_path_and_folder_without_video_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        list(iter_clip_uris(str(tmp_path / "nowhere")))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceError, match="holds no video"):
        list(iter_clip_uris(str(tmp_path)))


def test_live_urls() -> None:
    assert all(is_live(u) for u in ("rtsp://h/s", "RTSPS://h/s", "rtmp://h/s", "http://h/a.ts", "https://h/x"))
    assert not any(is_live(u) for u in ("/var/clips/a.mp4", "file:///a.mp4", "clip.avi", "s3://b/k"))


def test_sample_rate_is_checked_and_settable() -> None:
    source = LiveSource("rtsp://127.0.0.1:9/x", "cam", 5.0)
    source.sample_fps = 2.5
    assert source.sample_fps == 2.5
    for bad in (0.0, -1.0, 1000.0):
        with pytest.raises(ValueError, match="sample_fps"):
            source.sample_fps = bad
    assert source.sample_fps == 2.5


def test_credentials_never_reach_logs_or_status(caplog: pytest.LogCaptureFixture) -> None:
    """A camera on a closed loopback port: the error is reported, redacted, and the source keeps trying."""
    caplog.set_level(logging.INFO, logger="edge_agent.sources")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    source = LiveSource(f"rtsp://admin:hunter2@127.0.0.1:{port}/live?token=abc123", "porch", 5.0,
                        backoff_min_s=0.05, backoff_max_s=0.1)
    stop = threading.Event()
    items = source.frames(stop)
    deadline = time.monotonic() + 20
    while source.status.last_error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    status = source.status
    stop.set()
    assert list(items) == []  # nothing ever came, and the iterator ends once stop is set
    assert status.state == "connecting"
    assert "Connection refused" in (status.last_error or "")
    assert source.status.state == "stopped"
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records) + status.model_dump_json()
    assert "hunter2" not in text and "abc123" not in text
    assert f"rtsp://***@127.0.0.1:{port}/live?token=***" in text


def test_slow_consumer_gets_the_newest_frames_and_drops_are_counted(tmp_path: Path) -> None:
    """A file read as a live source decodes as fast as it can; nobody consumes until it has ended."""
    path = tmp_path / "c.avi"
    ramp_clip(path, 30, 10.0, 8)
    random.seed(7)  # the backoff's full jitter: a long wait before the second connection
    source = LiveSource(str(path), "cam", 50.0, queue_size=2, backoff_min_s=600, backoff_max_s=600)
    stop = threading.Event()
    items = source.frames(stop)
    deadline = time.monotonic() + 20
    while source.status.state != "reconnecting" and time.monotonic() < deadline:
        time.sleep(0.02)
    status = source.status
    first, second, gap = next(items), next(items), next(items)
    stop.set()
    list(items)
    assert status.frames == 30 and status.dropped_frames == 28 and status.reconnects == 0
    assert isinstance(first, Frame) and isinstance(second, Frame) and isinstance(gap, SourceGap)
    assert gap.reason == "the stream ended"
    assert second.ts - first.ts == pytest.approx(0.1, abs=1e-6)  # the last two frames, 0.1 s apart
    assert int(second.image.mean()) == pytest.approx(29 * 8, abs=3)


def test_a_camera_down_for_long_keeps_being_retried(caplog: pytest.LogCaptureFixture) -> None:
    """Past a thousand failed attempts the backoff's exponent must not overflow (months at 30 s apart)."""
    caplog.set_level(logging.WARNING, logger="edge_agent.sources")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = LiveSource(f"rtsp://127.0.0.1:{port}/x", "cam", 5.0, backoff_min_s=1e-6, backoff_max_s=1e-5)
    stop = threading.Event()
    items = source.frames(stop)

    def attempts() -> int:
        return max((getattr(r, "attempt", 0) for r in list(caplog.records)), default=0)

    deadline = time.monotonic() + 60
    while attempts() <= 1100 and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = source._thread is not None and source._thread.is_alive()
    stop.set()
    list(items)
    assert attempts() > 1100
    assert alive
