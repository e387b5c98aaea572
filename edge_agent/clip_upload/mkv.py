"""Matroska fragments for Kinesis Video: the local segment re-muxed (no re-encode) with producer timestamps.

Kinesis Video takes a Matroska stream whose clusters are its fragments; with the fragment timecode type
ABSOLUTE each cluster's timecode is the producer timestamp (ms since the epoch, TimecodeScale 1 ms). The
segment already holds H.264 with real pts in milliseconds (`models.video.SegmentWriter`), so its packets
are copied with `wall_ms` added (another codec is encoded to H.264 once), a cluster per key frame, and
the result is split with a small EBML walker into the header (EBML + Segment with Info and Tracks) and
the clusters, so a resumed upload can send the header again followed only by the clusters not yet
persisted.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.video.frame import PictureType

EBML_ID = 0x1A45DFA3
SEGMENT_ID = 0x18538067
CLUSTER_ID = 0x1F43B675
TIMECODE_ID = 0xE7
_MS = Fraction(1, 1000)
UNKNOWN_SIZE = -1
# Top-level elements written before the first cluster that a resumed stream must repeat.
_HEADER_IDS = frozenset({0x114D9B74, 0x1549A966, 0x1654AE6B, 0xEC, 0x1254C367})  # SeekHead Info Tracks Void Tags


class MkvError(ValueError):
    """Bytes that are not the Matroska this module writes (or a segment it cannot re-mux)."""


@dataclass(frozen=True)
class Fragment:
    timecode_ms: int  # absolute producer timestamp of the cluster (ms since the epoch)
    data: bytes  # the whole Cluster element


@dataclass(frozen=True)
class FragmentedClip:
    header: bytes  # EBML header + Segment start (unknown size) + Info + Tracks
    fragments: tuple[Fragment, ...]
    first_ms: int  # producer timestamp of the first frame
    last_ms: int  # producer timestamp of the last frame

    def stream(self, after_ms: int | None = None) -> bytes:
        """The bytes to PutMedia: the header, then every fragment later than `after_ms` (resume)."""
        parts = [f.data for f in self.fragments if after_ms is None or f.timecode_ms > after_ms]
        return self.header + b"".join(parts)


# -- EBML ---------------------------------------------------------------------------------------
def _read_vint(buf: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int]:
    if pos >= len(buf):
        raise MkvError(f"truncated EBML at byte {pos}")
    first = buf[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8:
        raise MkvError(f"invalid EBML variable-length integer at byte {pos}")
    if pos + length > len(buf):
        raise MkvError(f"truncated EBML at byte {pos}")
    value = first if keep_marker else first & (mask - 1)
    for b in buf[pos + 1:pos + length]:
        value = (value << 8) | b
    if not keep_marker and value == (1 << (7 * length)) - 1:
        value = UNKNOWN_SIZE
    return value, pos + length


def read_element(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(element id, data start, data size or UNKNOWN_SIZE) of the element at `pos`."""
    element_id, pos = _read_vint(buf, pos, keep_marker=True)
    size, pos = _read_vint(buf, pos, keep_marker=False)
    return element_id, pos, size


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big") if data else 0


def cluster_timecode(buf: bytes, start: int, end: int) -> int:
    """The Timecode child of a cluster whose data lies in buf[start:end]."""
    pos = start
    while pos < end:
        element_id, data, size = read_element(buf, pos)
        if size == UNKNOWN_SIZE:
            break
        if element_id == TIMECODE_ID:
            return _uint(buf[data:data + size])
        pos = data + size
    raise MkvError("a cluster has no timecode")


def split(buf: bytes) -> tuple[bytes, list[Fragment]]:
    """Split a Matroska stream into its header and its clusters (each with its timecode)."""
    element_id, data, size = read_element(buf, 0)
    if element_id != EBML_ID or size == UNKNOWN_SIZE:
        raise MkvError("not Matroska: no EBML header")
    pos = data + size
    element_id, seg_data, seg_size = read_element(buf, pos)
    if element_id != SEGMENT_ID:
        raise MkvError("not Matroska: no Segment after the EBML header")
    seg_end = len(buf) if seg_size == UNKNOWN_SIZE else min(len(buf), seg_data + seg_size)
    # The header a stream starts with: the Segment's size is always sent as unknown (live stream).
    header = bytearray(buf[:pos] + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff")
    fragments: list[Fragment] = []
    pos = seg_data
    while pos < seg_end:
        element_id, data, size = read_element(buf, pos)
        if size == UNKNOWN_SIZE:
            raise MkvError("an element inside the Segment has an unknown size")
        end = data + size
        if end > len(buf):
            raise MkvError("truncated Matroska element")
        if element_id == CLUSTER_ID:
            fragments.append(Fragment(cluster_timecode(buf, data, end), bytes(buf[pos:end])))
        elif element_id in _HEADER_IDS and not fragments and element_id not in (0x114D9B74, 0xEC):
            header += buf[pos:end]  # Info, Tracks (SeekHead and Void point at offsets that no longer hold)
        pos = end
    return bytes(header), fragments


def iter_clusters(buf: bytes) -> Iterator[Fragment]:
    yield from split(buf)[1]


# -- re-muxing ----------------------------------------------------------------------------------
_MUX_OPTIONS = {"live": "1", "dash": "1", "cluster_time_limit": "9000", "cluster_size_limit": "8000000"}
KEYFRAME_EVERY_S = 2.0  # when a clip must be encoded: fragments of 2 s, well under KVS's 10 s limit


def fragment_segment(path: Path, wall_ms_at_zero: int) -> FragmentedClip:
    """Matroska fragments of a segment, timed `wall_ms_at_zero` + its pts (ms since the epoch).

    `wall_ms_at_zero` is the producer timestamp of the segment's pts 0. H.264 (the agent's segments) is
    re-muxed, packets untouched; anything else (an MJPEG segment, a camera's own clip file) is encoded
    to H.264 once, frames keeping their times. Raises MkvError when the file cannot be read.
    """
    out = io.BytesIO()
    try:
        with av.open(str(path), mode="r") as src:
            if not src.streams.video:
                raise MkvError(f"{path.name}: holds no video stream")
            if src.streams.video[0].codec_context.name == "h264":
                first, last = _remux(src, out, wall_ms_at_zero)
            else:
                first, last = _encode(path, out, wall_ms_at_zero)
    except (av.error.FFmpegError, OSError) as exc:
        raise MkvError(f"{path.name}: cannot re-mux: {exc}") from exc
    if first is None or last is None:
        raise MkvError(f"{path.name}: holds no frame")
    header, fragments = split(out.getvalue())
    if not fragments:
        raise MkvError(f"{path.name}: produced no cluster")
    return FragmentedClip(header, tuple(fragments), first, last)


def _remux(src: av.container.InputContainer, out: io.BytesIO, wall_ms: int) -> tuple[int | None, int | None]:
    stream = src.streams.video[0]
    scale = float(stream.time_base) * 1000 if stream.time_base else 1.0
    shift = round(wall_ms / scale)
    first = last = None
    # `live`: unknown sizes, no cues; `dash`: a new cluster at every key frame, however small the last.
    with av.open(out, mode="w", format="matroska", options=_MUX_OPTIONS) as dst:
        ostream = dst.add_stream_from_template(stream)
        ostream.time_base = stream.time_base
        for packet in src.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            dts = packet.dts if packet.dts is not None else packet.pts
            packet.pts += shift
            packet.dts = dts + shift
            ms = round(packet.pts * scale)
            first = ms if first is None else min(first, ms)
            last = ms if last is None else max(last, ms)
            packet.stream = ostream
            dst.mux(packet)
    return first, last


def _encode(path: Path, out: io.BytesIO, wall_ms: int) -> tuple[int | None, int | None]:
    from models.video import VideoError, VideoReader

    first = last = None
    try:
        with VideoReader(path) as reader, av.open(out, mode="w", format="matroska", options=_MUX_OPTIONS) as dst:
            rate = Fraction(reader.fps or 5).limit_denominator(1000)
            stream = dst.add_stream("libx264", rate=rate, options={
                "preset": "ultrafast", "tune": "zerolatency", "g": str(max(1, round(KEYFRAME_EVERY_S * rate)))})
            stream.pix_fmt = "yuv420p"
            stream.width, stream.height = reader.width - reader.width % 2, reader.height - reader.height % 2
            stream.time_base = stream.codec_context.time_base = _MS
            for ts, frame in reader.decoded():
                pts = wall_ms + round(ts * 1000)
                if last is not None and pts <= last:
                    pts = last + 1  # equal milliseconds are nudged: pts must increase
                picture = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                picture.pts, picture.time_base = pts, _MS
                picture.pict_type = PictureType.NONE  # a decoder's I (every MJPEG frame) would force key frames
                for packet in stream.encode(picture):
                    dst.mux(packet)
                first = pts if first is None else first
                last = pts
            for packet in stream.encode(None):
                dst.mux(packet)
    except VideoError as exc:
        raise MkvError(str(exc)) from exc
    return first, last

SIMPLE_BLOCK_ID = 0xA3
BLOCK_GROUP_ID = 0xA0
BLOCK_ID = 0xA1


def cluster_span(cluster: bytes) -> tuple[int, int]:
    """(first, last) frame time in ms of a whole Cluster element: its timecode plus its blocks' offsets."""
    element_id, data, size = read_element(cluster, 0)
    if element_id != CLUSTER_ID or size == UNKNOWN_SIZE:
        raise MkvError("not a cluster")
    end = data + size
    base = cluster_timecode(cluster, data, end)
    offsets: list[int] = []
    pos = data
    while pos < end:
        element_id, body, length = read_element(cluster, pos)
        if length == UNKNOWN_SIZE:
            raise MkvError("an element inside a cluster has an unknown size")
        if element_id == BLOCK_GROUP_ID:
            pos = body  # descend: the Block is one of the group's children
            continue
        if element_id in (SIMPLE_BLOCK_ID, BLOCK_ID):
            _, after_track = _read_vint(cluster, body, keep_marker=False)
            offsets.append(int.from_bytes(cluster[after_track:after_track + 2], "big", signed=True))
        pos = body + length
    if not offsets:
        raise MkvError("a cluster holds no frame")
    return base + min(offsets), base + max(offsets)
