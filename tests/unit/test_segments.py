"""The gateway's event segments: real time stamps, a pre-roll bounded by time, clear errors on bad disks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edge_agent.segments import PRE_ROLL_S, SegmentError, SegmentRecorder, SourceClipRecorder
from models.video import SegmentCodec, SegmentWriter, VideoReader


def image(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


@pytest.mark.parametrize("codec", ["h264", "mjpeg"])
def test_segment_keeps_real_times_and_a_time_bounded_pre_roll(tmp_path: Path, codec: SegmentCodec) -> None:
    recorder = SegmentRecorder(tmp_path, "cam", fps=5.0, codec=codec)
    times = [10.0, 10.5, 11.0, 12.1, 12.2, 12.25, 12.9, 14.0]  # a variable rate, with a hole
    for i, ts in enumerate(times[:4]):
        recorder.push(ts, image(i * 20))
    recorder.start("evt1")
    assert recorder.recording
    for i, ts in enumerate(times[4:], start=4):
        recorder.push(ts, image(i * 20))
    ref = recorder.finish()
    assert not recorder.recording
    # Pre-roll: frames of the last PRE_ROLL_S seconds before the event (10.0 is older than that).
    assert ref.offset_s == 10.5 and PRE_ROLL_S == 2.0
    assert ref.uri == "cam/evt1.mkv" and ref.content_type == "video/x-matroska" and ref.fps == 5.0
    path = tmp_path / ref.uri
    assert ref.size_bytes == path.stat().st_size
    assert not list(tmp_path.glob("cam/*.part"))
    with VideoReader(path) as reader:
        stamps = reader.timestamps()
        frames = list(reader.frames())
    expected = [round(t - 10.5, 3) for t in times[1:]]
    assert [round(t, 3) for t in stamps] == expected
    assert [round(f.ts, 3) for f in frames] == expected
    assert [round(float(f.image.mean()) / 20) for f in frames] == list(range(1, 8))


def test_full_disk_raises_segment_error_and_the_next_event_records(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full missing")
    recorder = SegmentRecorder(tmp_path, "cam", fps=5.0)
    (tmp_path / "cam").mkdir()
    os.symlink("/dev/full", tmp_path / "cam" / "evt1.mkv.part")  # every write: ENOSPC
    big = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)  # too big to stay buffered
    recorder.push(0.0, big)
    with pytest.raises(SegmentError, match="evt1") as info:
        recorder.start("evt1")
        for k in range(1, 20):
            recorder.push(k * 0.2, big)
        recorder.finish()
    assert isinstance(info.value, OSError)
    assert not recorder.recording
    assert not (tmp_path / "cam" / "evt1.mkv").exists()
    recorder.push(10.0, image(50))
    recorder.start("evt2")
    recorder.push(10.2, image(60))
    ref = recorder.finish()
    with VideoReader(tmp_path / ref.uri) as reader:
        assert [round(t, 3) for t in reader.timestamps()] == [0.0, 0.2]


def test_unwritable_folder_raises_segment_error(tmp_path: Path) -> None:
    (tmp_path / "cam").write_text("a file where the camera's folder should be")
    recorder = SegmentRecorder(tmp_path, "cam", fps=5.0)
    recorder.push(0.0, image(1))
    with pytest.raises(SegmentError, match="cannot start the segment"):
        recorder.start("evt1")
    assert not recorder.recording
    source = tmp_path / "clip.avi"
    source.write_bytes(b"x")
    keeper = SourceClipRecorder(tmp_path, "cam", source, 5.0)
    keeper.start("evt2")
    with pytest.raises(SegmentError, match="cannot keep the clip"):
        keeper.finish()
    assert not keeper.recording


def test_odd_frame_sizes_are_written(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path / "odd.mkv", 65, 49)
    writer.write(0.0, np.full((49, 65, 3), 90, np.uint8))
    writer.close()
    with VideoReader(tmp_path / "odd.mkv") as reader:
        [frame] = list(reader.frames())
    assert frame.image.shape == (48, 64, 3)
