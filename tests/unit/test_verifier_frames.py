"""Reading segments and stills for the verifier: clear errors for what cannot be read, right frames chosen."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud.verifier.frames import ClipReadError, read_image, read_segment, segment_time
from contracts import Candidate, ClipRef, ModelRef, new_event_id


def candidate(start: float = 0.0, end: float = 2.0, best: float = 1.0, clip_offset: float | None = None) -> Candidate:
    now = datetime.now(UTC)
    return Candidate(
        event_id=new_event_id(), gateway_id="gw", camera_id="cam", started_at=now, ended_at=now,
        start_offset_s=start, end_offset_s=end, frame_width=64, frame_height=48, best_frame_offset_s=best,
        snapshot_jpeg=b"", boxes=[], tracks=[], score=0.5, threshold=0.5,
        model=ModelRef(model_id="m", version="1"), reasons=["test"],
        clip=ClipRef(kind="local", uri="x.avi", offset_s=clip_offset) if clip_offset is not None else None,
    )


def write_segment(path: Path, n: int = 20, fps: float = 5.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(n):
        frame = np.full((48, 64, 3), i * 10 % 255, np.uint8)
        writer.write(frame)
    writer.release()


@pytest.mark.parametrize("content", [None, b"", b"not a video at all" * 100])
def test_unreadable_clips_raise_clear_errors(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "seg.avi"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ClipReadError, match=r"seg\.avi"):
        read_segment(path, candidate(), max_frames=8, margin=1.0)


def test_unreadable_image_raises(tmp_path: Path) -> None:
    path = tmp_path / "still.jpg"
    path.write_bytes(b"\xff\xd8 broken")
    with pytest.raises(ClipReadError, match=r"still\.jpg"):
        read_image(path)


def test_segment_frames_are_chosen_in_the_event_window(tmp_path: Path) -> None:
    path = tmp_path / "seg.avi"
    write_segment(path, n=40)  # 8 s at 5 fps
    frames, total = read_segment(path, candidate(start=2.0, end=4.0, best=3.0), max_frames=4, margin=0.5)
    assert total == 40
    assert len(frames) == 4
    times = [t for t, _ in frames]
    assert all(1.5 - 1e-6 <= t <= 4.5 + 1e-6 for t in times)
    assert any(abs(t - 3.0) < 0.11 for t in times)
    assert all(f.shape == (48, 64, 3) for _, f in frames)


def test_candidate_offsets_are_taken_relative_to_the_segment() -> None:
    assert segment_time(candidate(start=12.0, end=14.0, best=13.0, clip_offset=10.0), 10.0) == (2.0, 4.0, 3.0)


def test_variable_rate_segment_from_the_gateway_is_read_at_its_real_times(tmp_path: Path) -> None:
    """The gateway's recorder keeps each frame's time; the verifier finds the frames the gateway saw.

    At a nominal 5 fps the frame seen at 103.0 s would sit at 1.0 s into the segment, not 3.0 s.
    """
    from edge_agent.segments import SegmentRecorder

    times = [100.0, 100.1, 100.2, 100.3, 101.5, 103.0, 103.05, 103.1, 104.0]
    recorder = SegmentRecorder(tmp_path, "cam", fps=5.0)
    recorder.push(times[0], np.full((48, 64, 3), 0, np.uint8))
    recorder.start("evt")
    for i, ts in enumerate(times[1:], start=1):
        recorder.push(ts, np.full((48, 64, 3), i * 25, np.uint8))
    ref = recorder.finish()
    assert ref.offset_s == 100.0
    cand = candidate(start=103.0, end=103.1, best=103.05).model_copy(update={"clip": ref})
    frames, total = read_segment(tmp_path / ref.uri, cand, max_frames=3, margin=0.0)
    assert total == len(times)
    assert [round(t, 3) for t, _ in frames] == [3.0, 3.05, 3.1]
    assert [round(float(f.mean()) / 25) for _, f in frames] == [5, 6, 7]
