"""Matroska fragments for Kinesis Video: one cluster per key frame, timed by the producer's wall clock."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from edge_agent.clip_upload.mkv import MkvError, cluster_span, fragment_segment, split
from models.video import SegmentWriter, VideoReader

WALL_MS = 1764500000123


@pytest.fixture(scope="module")
def segment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s at 10 fps through the gateway's segment writer (a key frame every 2 s), with uneven spacing."""
    path = tmp_path_factory.mktemp("seg") / "event.mkv"
    writer = SegmentWriter(path, 64, 48, nominal_fps=10)
    for i in range(50):
        writer.write(i * 0.1 + (0.013 if i == 7 else 0.0), np.full((48, 64, 3), i * 5, np.uint8))
    writer.close()
    return path


def test_clusters_start_at_key_frames_with_absolute_producer_timecodes(segment: Path) -> None:
    clip = fragment_segment(segment, WALL_MS)
    assert [f.timecode_ms for f in clip.fragments] == [WALL_MS, WALL_MS + 2000, WALL_MS + 4000]
    assert (clip.first_ms, clip.last_ms) == (WALL_MS, WALL_MS + 4900)
    assert [cluster_span(f.data) for f in clip.fragments] == [
        (WALL_MS, WALL_MS + 1900), (WALL_MS + 2000, WALL_MS + 3900), (WALL_MS + 4000, WALL_MS + 4900)]


def test_the_stream_decodes_to_the_same_frames_at_wall_times(segment: Path, tmp_path: Path) -> None:
    clip = fragment_segment(segment, WALL_MS)
    out = tmp_path / "stream.mkv"
    out.write_bytes(clip.stream())
    with av.open(str(out)) as container:
        pts = [frame.pts for frame in container.decode(video=0)]
    with VideoReader(segment) as reader:
        original = [round(ts * 1000) for ts in reader.timestamps()]
    assert pts == [WALL_MS + ms for ms in original]
    assert pts[7] == WALL_MS + 713  # real spacing kept, not index / fps


def test_a_resumed_stream_repeats_the_header_and_skips_persisted_fragments(segment: Path, tmp_path: Path) -> None:
    clip = fragment_segment(segment, WALL_MS)
    resumed = clip.stream(after_ms=WALL_MS)
    header, fragments = split(resumed)
    assert header == clip.header
    assert [f.timecode_ms for f in fragments] == [WALL_MS + 2000, WALL_MS + 4000]
    out = tmp_path / "resumed.mkv"
    out.write_bytes(resumed)
    with av.open(str(out)) as container:
        first = next(iter(container.decode(video=0)))
    assert first.pts == WALL_MS + 2000 and first.key_frame


def test_bytes_that_are_not_matroska_are_refused() -> None:
    with pytest.raises(MkvError, match="no EBML header"):
        split(b"RIFF....AVI LIST")
    with pytest.raises(MkvError, match="truncated"):
        split(b"\x1a\x45\xdf\xa3")


def test_a_clip_that_is_not_h264_is_encoded_once_with_its_times(tmp_path: Path) -> None:
    path = tmp_path / "mjpeg.mkv"
    writer = SegmentWriter(path, 64, 48, codec="mjpeg", nominal_fps=5)
    texture = np.random.default_rng(7).integers(0, 200, (48, 64, 3), dtype=np.uint8)
    for i in range(15):  # one scene, slowly changing: only the 2 s key-frame interval starts a fragment
        writer.write(i * 0.2 + (0.031 if i == 4 else 0.0), texture + i)
    writer.close()
    clip = fragment_segment(path, WALL_MS)
    out = tmp_path / "stream.mkv"
    out.write_bytes(clip.stream())
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        pts = [frame.pts for frame in container.decode(video=0)]
    assert pts == [WALL_MS + round(i * 200 + (31 if i == 4 else 0)) for i in range(15)]
    assert [f.timecode_ms for f in clip.fragments] == [WALL_MS, WALL_MS + 2000]  # a key frame every 2 s


def test_a_file_that_is_not_video_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.mkv"
    path.write_bytes(b"this is not a video")
    with pytest.raises(MkvError, match="cannot re-mux"):
        fragment_segment(path, WALL_MS)
