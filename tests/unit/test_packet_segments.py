"""Event segments by stream copy: the camera's own packets remuxed from a keyframe, never re-encoded."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from edge_agent.segments import PRE_ROLL_S, SegmentError, SegmentRecorder
from edge_agent.sources import Frame, LiveSource, SourceGap, open_clip
from models.video import PacketBatch, PacketRing, SourcePacket, VideoReader
from tests.footage import ramp_clip
from tests.rtsp_server import make_h264_footage


@pytest.fixture(scope="module")
def h264_clip(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s of vtest at 192 px, 10 fps, a keyframe a second, looped twice (12 s)."""
    return make_h264_footage(vtest, tmp_path_factory.mktemp("h264") / "v.mkv", seconds=6, loops=2, width=192)


def source_packets(path: Path) -> list[tuple[float, bool, bytes]]:
    """(seconds from the first frame, keyframe, bytes) of every packet of a file, in decode order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        raw = [(p.pts, p.is_keyframe, bytes(p)) for p in container.demux(stream) if p.size > 0]
        base = stream.time_base
    origin = min(pts for pts, _, _ in raw[:16])
    return [(float((pts - origin) * base), key, data) for pts, key, data in raw]


def record(path: Path, tmp_path: Path, start_at: float, end_at: float, sample_fps: float = 5.0):
    """Run a file through a recorder as the agent does: sampled frames with their packets."""
    recorder = SegmentRecorder(tmp_path, "cam", fps=sample_fps)
    clip = open_clip(str(path))
    fed = []
    for frame in clip.frames(sample_fps, keep_packets=True):
        if frame.ts > end_at:
            break
        recorder.push(frame.ts, frame.image, frame.packets)  # as the camera does: the frame, then the event
        if not recorder.recording and frame.ts >= start_at:
            recorder.start("evt")
        fed.append(frame)
    clip.close()
    return recorder.finish(), fed


def test_h264_segment_is_a_stream_copy_from_a_keyframe_before_the_event(h264_clip: Path, tmp_path: Path) -> None:
    source = source_packets(h264_clip)
    ref, fed = record(h264_clip, tmp_path, start_at=5.3, end_at=8.0)
    assert all(f.packets is not None for f in fed)
    keyframe_times = [ts for ts, key, _ in source if key]
    # It starts at the source's last keyframe at or before the pre-roll (events open at the frame at 5.4).
    assert ref.offset_s == pytest.approx(max(t for t in keyframe_times if t <= 5.4 - PRE_ROLL_S + 1e-6), abs=1e-3)
    assert ref.fps == pytest.approx(10.0)  # the segment holds every source frame, not only the sampled ones
    segment = tmp_path / ref.uri
    with av.open(str(segment)) as container:
        copied = [(p.is_keyframe, bytes(p)) for p in container.demux(container.streams.video[0]) if p.size > 0]
    assert copied[0][0], "the segment starts at a keyframe"
    first = next(i for i, (ts, _, _) in enumerate(source) if abs(ts - ref.offset_s) < 1e-3)
    # No re-encode: the very bytes of the source's packets, in order, for the whole copied span.
    assert [data for _, data in copied] == [data for _, _, data in source[first:first + len(copied)]]
    assert source[first + len(copied) - 1][0] >= 8.0 - 0.1
    with VideoReader(segment) as reader:
        assert (reader.width, reader.height) == (192, 144)
        frames = list(reader.frames())
    times = [f.ts for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    source_times = [ts for ts, _, _ in source]
    # Every segment frame maps back onto a source frame's time (well within half a frame: 50 ms).
    assert len(times) == len(copied)
    for ts in times:
        assert min(abs(ts + ref.offset_s - s) for s in source_times) < 2e-3
    # ... and decodes to the very picture the gateway saw at that time.
    seen = {round(f.ts, 2): f.image for f in fed}
    compared = 0
    for frame in frames:
        key = round(frame.ts + ref.offset_s, 2)
        if key in seen:
            assert float(np.abs(frame.image.astype(int) - seen[key].astype(int)).mean()) < 0.5
            compared += 1
    assert compared >= 10


def test_mpeg4_with_b_frames_and_msmpeg4_are_copied(vtest: Path, opencv_data: Path, tmp_path: Path) -> None:
    """AVI sources the container also carries: MS-MPEG-4 (vtest) and MPEG-4 with packed B-frames (Megamind)."""
    ref, fed = record(vtest, tmp_path / "a", start_at=3.0, end_at=4.5, sample_fps=10.0)
    assert fed[-1].packets is not None
    assert ref.offset_s <= 3.0 - PRE_ROLL_S + 1e-6
    megamind = opencv_data / "Megamind.avi"
    ref_b, _ = record(megamind, tmp_path / "b", start_at=2.5, end_at=3.5)
    with VideoReader(tmp_path / "b" / ref_b.uri) as reader:
        times = [ts for ts, _ in reader.decoded()]
        assert (reader.width, reader.height) == (720, 528)
    assert times[0] == 0.0 and times == sorted(times)
    assert times[-1] + ref_b.offset_s >= 3.5 - 0.05


def test_a_codec_matroska_cannot_carry_falls_back_to_encoding(tree_clip: Path, tmp_path: Path) -> None:
    ref, fed = record(tree_clip, tmp_path, start_at=2.5, end_at=3.5)
    assert all(f.packets is None for f in fed)  # Cinepak: no template, frames only
    with VideoReader(tmp_path / ref.uri) as reader:
        assert reader._stream.codec_context.name == "h264"  # encoded by the fallback
        assert len(list(reader.decoded())) >= 5


def test_frames_without_packets_are_encoded(tmp_path: Path) -> None:
    recorder = SegmentRecorder(tmp_path, "cam", fps=5.0)
    for i in range(4):
        recorder.push(i * 0.2, np.full((48, 64, 3), i * 30, np.uint8))
    assert not recorder.copies
    recorder.start("e")
    recorder.push(0.8, np.full((48, 64, 3), 120, np.uint8))
    ref = recorder.finish()
    with VideoReader(tmp_path / ref.uri) as reader:
        assert [round(ts, 3) for ts in reader.timestamps()] == [0.0, 0.2, 0.4, 0.6, 0.8]


def synthetic(index: int, gop: int, size: int = 100) -> SourcePacket:
    return SourcePacket(bytes(size), index, index, index % gop == 0, index / 10)


def test_ring_stays_bounded_over_a_long_stream_and_keeps_a_keyframe() -> None:
    template = object()
    ring = PacketRing(pre_roll_s=2.0, max_bytes=50_000, max_packets=300)
    peak = (0, 0)
    for i in range(100_000):  # ~3 hours at 10 fps, a keyframe every 2.5 s
        ring.add(PacketBatch(template, [synthetic(i, 25)]), i / 10)  # type: ignore[arg-type]
        peak = (max(peak[0], ring.count), max(peak[1], ring.size))
    assert peak[0] <= 25 * 2 + 1 and peak[1] <= 100 * (25 * 2 + 1)
    since = ring.since(99_999 / 10 - 2.0)
    assert since[0][1].keyframe and since[0][0] <= 99_999 / 10 - 2.0


def test_ring_drops_a_gop_over_its_bounds_and_waits_for_the_next_keyframe() -> None:
    template = object()
    ring = PacketRing(pre_roll_s=2.0, max_bytes=10_000, max_packets=10_000)
    for i in range(150):  # one GOP of 150 packets of 100 bytes: over the byte bound
        ring.add(PacketBatch(template, [synthetic(i, 1000)]), i / 10)  # type: ignore[arg-type]
        assert ring.size <= 10_000
    assert ring.since(15.0) == [] or ring.since(15.0)[0][1].keyframe
    ring.add(PacketBatch(template, [synthetic(1000, 1000)]), 100.0)  # type: ignore[arg-type]
    assert ring.count == 1 and ring.since(100.0)[0][1].keyframe
    ring.add(PacketBatch(object(), [synthetic(1001, 1000)]), 100.1)  # type: ignore[arg-type]
    assert ring.count == 0  # another connection's packets do not continue this one's


def test_dropped_frames_hand_their_packets_on(tmp_path: Path) -> None:
    """A slow consumer skips pictures, never packets: the segment must not have holes."""
    path = tmp_path / "c.avi"
    ramp_clip(path, 30, 10.0, 8)
    random.seed(7)
    source = LiveSource(str(path), "cam", 50.0, queue_size=2, backoff_min_s=600, backoff_max_s=600)
    stop = threading.Event()
    items = source.frames(stop)
    deadline = time.monotonic() + 20
    while source.status.state != "reconnecting" and time.monotonic() < deadline:
        time.sleep(0.02)
    first, second, gap = next(items), next(items), next(items)
    stop.set()
    list(items)
    assert isinstance(first, Frame) and isinstance(second, Frame) and isinstance(gap, SourceGap)
    assert source.status.dropped_frames == 28
    assert first.packets is not None and second.packets is not None
    assert len(first.packets.packets) + len(second.packets.packets) == 30
    stamps = [p.pts for p in first.packets.packets + second.packets.packets]
    assert stamps == sorted(stamps) and len(set(stamps)) == 30


def test_a_ring_at_its_bounds_cuts_no_hole_in_the_segment(h264_clip: Path, tmp_path: Path) -> None:
    """The ring drops old GOPs to stay bounded; the segment being written still gets every packet."""
    source = source_packets(h264_clip)
    recorder = SegmentRecorder(tmp_path, "cam", fps=5.0)
    recorder._ring = PacketRing(PRE_ROLL_S, max_packets=6)  # under one GOP (10 packets at 10 fps)
    clip = open_clip(str(h264_clip))
    for frame in clip.frames(5.0, keep_packets=True):
        if frame.ts > 7.0:
            break
        recorder.push(frame.ts, frame.image, frame.packets)
        if not recorder.recording and frame.ts >= 3.0:
            recorder.start("evt")
        assert recorder._ring.count <= 6
    clip.close()
    ref = recorder.finish()
    with av.open(str(tmp_path / ref.uri)) as container:
        copied = [bytes(p) for p in container.demux(container.streams.video[0]) if p.size > 0]
    first = next(i for i, (ts, _, _) in enumerate(source) if abs(ts - ref.offset_s) < 1e-3)
    assert source[first][1] and len(copied) >= 30
    assert copied == [data for _, _, data in source[first:first + len(copied)]]


def test_a_keyframe_without_time_stamp_never_starts_a_segment() -> None:
    """An RTSP session's first packet (a keyframe) comes before the stream's clock: no pts, no dts."""
    template = object()
    ring = PacketRing(pre_roll_s=2.0)
    first = SourcePacket(bytes(10), None, None, True, None)
    ring.add(PacketBatch(template, [first, *(synthetic(i, 10) for i in range(1, 25))]), 2.4)  # type: ignore[arg-type]
    since = ring.since(0.0)
    assert since[0][1] is not first and since[0][1].keyframe and since[0][1].pts == 10


def test_an_event_before_the_first_timed_keyframe_starts_its_segment_at_the_next(h264_clip: Path,
                                                                                 tmp_path: Path) -> None:
    """As on an RTSP connection: the first keyframe has no time, the event opens at once."""
    recorder = SegmentRecorder(tmp_path, "cam", fps=5.0)
    clip = open_clip(str(h264_clip))
    for index, frame in enumerate(clip.frames(5.0, keep_packets=True)):
        if frame.ts > 2.5:
            break
        assert frame.packets is not None
        if index == 0:
            frame.packets.packets[0] = dataclasses.replace(frame.packets.packets[0], pts=None, dts=None, ts=None)
        recorder.push(frame.ts, frame.image, frame.packets)
        if index == 0:
            recorder.start("evt")
            assert recorder.recording
    clip.close()
    ref = recorder.finish()
    assert ref.offset_s == pytest.approx(1.0, abs=1e-3)  # the next keyframe (one a second)
    with VideoReader(tmp_path / ref.uri) as reader:
        times = [ts for ts, _ in reader.decoded()]
    assert times[0] == 0.0 and times[-1] + ref.offset_s >= 2.4 - 1e-3


def test_no_timed_keyframe_while_the_event_lasted_is_a_segment_error(h264_clip: Path, tmp_path: Path) -> None:
    recorder = SegmentRecorder(tmp_path, "cam", fps=5.0)
    clip = open_clip(str(h264_clip))
    for index, frame in enumerate(clip.frames(5.0, keep_packets=True)):
        assert frame.packets is not None
        if index == 0:
            frame.packets.packets[0] = dataclasses.replace(frame.packets.packets[0], pts=None, dts=None, ts=None)
        recorder.push(frame.ts, frame.image, frame.packets)
        if index == 0:
            recorder.start("evt")
        if frame.ts >= 0.6:
            break
    clip.close()
    with pytest.raises(SegmentError, match="no keyframe"):
        recorder.finish()
    assert not recorder.recording and not list(tmp_path.rglob("*.mkv*"))
