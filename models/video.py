"""The one video reader (and segment writer) the gateway and the cloud share, on PyAV.

One time base everywhere: a frame's `ts` is its presentation time stamp in seconds, counted from the
first frame of the file (a live stream's `ts` counts from the first frame of the connection). Variable
frame rates keep their real spacing: nothing is derived from index / nominal fps unless the container
gives no time stamp at all.

Every blocking step is bounded: `open_timeout_s` covers connecting and probing, `read_timeout_s` each
read after that (PyAV's interrupt callback), so a camera that stops answering raises `VideoError` instead
of blocking a thread for minutes. Error messages never carry credentials (`contracts.redact_uri`).
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import re
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.error
import numpy as np

from contracts import redact_uri

log = logging.getLogger(__name__)

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
_LIVE = re.compile(rf"^(?:{'|'.join(LIVE_SCHEMES)})://", re.IGNORECASE)
# Seek instead of decoding forward when the next wanted time is this far ahead (one GOP is rarely longer).
SEEK_AHEAD_S = 3.0
# Packets whose presentation times are searched for the file's first one (B-frames reorder a few).
ORIGIN_PACKETS = 16
# Probing a live stream buffers this much of it before the first frame comes out (ffmpeg's default: 5 s).
LIVE_ANALYZE_US = "1000000"
MAX_BAD_PACKETS = 50  # consecutive undecodable packets before a file is declared corrupt
# Packets kept for a consumer that does not take them (kept only with keep_packets; bounds the list).
MAX_PENDING_PACKETS = 512


class VideoError(RuntimeError):
    """A video that cannot be opened or read; the message names it with credentials redacted."""


class VideoStalled(VideoError):
    """A stream that stopped delivering frames for longer than the read timeout."""


def is_live_uri(uri: str) -> bool:
    return bool(_LIVE.match(uri.strip()))


@dataclass(frozen=True)
class VideoFrame:
    ts: float  # seconds from the first frame (see module doc)
    image: np.ndarray  # BGR, uint8, HxWx3


class Sampler:
    """Keeps one frame per 1/fps seconds of stream time (not of index): a frame is due at `next_due`.

    The next due time advances by the period but never falls more than half a period behind the frame
    just kept, so a gap in the stream does not cause a burst afterwards.
    """

    def __init__(self, fps: float | None, start_s: float = 0.0) -> None:
        self.fps = fps
        self.next_due = start_s

    def take(self, ts: float) -> bool:
        if not self.fps:
            return True
        if ts + 1e-6 < self.next_due:
            return False
        period = 1.0 / self.fps
        self.next_due = max(self.next_due + period, ts + period * 0.5)
        return True


def _describe(exc: BaseException) -> str:
    """A short, redacted reason: PyAV's messages repeat the URL (with its credentials) after the errno."""
    if isinstance(exc, av.error.ExitError):
        return "timed out (no answer)"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return redact_uri(str(text))


class VideoReader:
    """An open video file or stream (first video stream only). Use as a context manager or `close()`."""

    def __init__(self, uri: str | Path, *, open_timeout_s: float = 10.0, read_timeout_s: float = 10.0,
                 keep_packets: bool = False) -> None:
        self.uri = str(uri)
        self.name = redact_uri(self.uri)
        self.live = is_live_uri(self.uri)
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self._origin: int | None = None
        # With keep_packets, every demuxed packet's bytes are kept until `take_packets` hands them over:
        # the event segment is then these packets remuxed, never decoded and re-encoded.
        self.keep_packets = keep_packets
        self._packets: list[SourcePacket] = []
        self._template: StreamTemplate | None = None
        self._template_tried = False
        self._container = self._open()
        stream = self._stream
        self.width = int(stream.codec_context.width or 0)
        self.height = int(stream.codec_context.height or 0)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate and 0 < float(rate) < 1000 else 0.0
        duration = None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration:
            duration = self._container.duration / av.time_base
        self.duration: float | None = duration
        self.frame_count: int | None = int(stream.frames) if stream.frames else None
        if self.width <= 0 or self.height <= 0:
            self.close()
            raise VideoError(f"{self.name}: the video reports no frame size")

    # -- opening ----------------------------------------------------------------------------------
    def _open(self) -> av.container.InputContainer:
        if not self.live:
            path = Path(self.uri)
            if not path.is_file():
                raise VideoError(f"{self.name}: no such video file")
            if path.stat().st_size == 0:
                raise VideoError(f"{self.name}: the file is empty")
        options: dict[str, str] = {}
        if self.uri.lower().startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": "tcp", "allowed_media_types": "video"}
        if self.live:
            options["analyzeduration"] = LIVE_ANALYZE_US
        started = time.monotonic()
        try:
            container = av.open(self.uri, mode="r", options=options,
                                timeout=(self.open_timeout_s, self.read_timeout_s))
        except (av.error.FFmpegError, OSError) as exc:
            # An interrupted wait surfaces as ExitError, or (RTSP) as "invalid data": the clock tells.
            if isinstance(exc, av.error.ExitError) or time.monotonic() - started >= self.open_timeout_s * 0.95:
                raise VideoError(f"{self.name}: no answer within {self.open_timeout_s:g} s") from exc
            if self.live:
                raise VideoError(f"{self.name}: cannot connect: {_describe(exc)}") from exc
            raise VideoError(f"{self.name}: cannot open it (corrupt, truncated or unsupported): "
                             f"{_describe(exc)}") from exc
        if not container.streams.video:
            container.close()
            raise VideoError(f"{self.name}: holds no video stream")
        return container

    @property
    def _stream(self) -> av.video.stream.VideoStream:
        return self._container.streams.video[0]

    def close(self) -> None:
        try:
            self._container.close()
        except Exception as exc:  # closing a broken stream must never raise
            log.debug("closing video failed", extra={"source": self.name, "error": _describe(exc)})

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- time -------------------------------------------------------------------------------------
    def _to_seconds(self, pts: int) -> float:
        assert self._origin is not None
        return float((pts - self._origin) * self._stream.time_base)

    def _ensure_origin(self) -> None:
        """The first frame's pts of a file (the smallest among its first packets), read from a second handle."""
        if self._origin is not None or self.live:
            return
        first: list[int] = []
        try:
            with av.open(self.uri, mode="r", timeout=(self.open_timeout_s, self.read_timeout_s)) as probe:
                for packet in probe.demux(probe.streams.video[0]):
                    if packet.pts is not None and packet.size > 0:
                        first.append(packet.pts)
                        if len(first) >= ORIGIN_PACKETS:
                            break
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(f"{self.name}: cannot read: {_describe(exc)}") from exc
        self._origin = min(first) if first else 0

    # -- reading ----------------------------------------------------------------------------------
    def decoded(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """Every frame from the current position, with its time, not converted (conversion costs more)."""
        self._ensure_origin()
        stream = self._stream
        bad = 0
        last_ts = -math.inf
        index = 0
        guess = _StampGuess()
        last_frame_at = last_packet_at = time.monotonic()
        try:
            for packet in self._container.demux(stream):
                last_packet_at = time.monotonic()
                if self.keep_packets and packet.size > 0:
                    self._keep(packet)
                if self.live and last_packet_at - last_frame_at > self.read_timeout_s:
                    # Packets keep coming (other streams, undecodable ones) but no picture does.
                    raise VideoStalled(f"{self.name}: no frame for {self.read_timeout_s:g} s (stalled)")
                try:
                    frames = packet.decode()
                    bad = 0
                except av.error.InvalidDataError as exc:
                    bad += 1
                    log.warning("undecodable packet skipped", extra={"source": self.name, "error": _describe(exc)})
                    if bad >= MAX_BAD_PACKETS:
                        raise VideoError(f"{self.name}: {bad} packets in a row do not decode (corrupt)") from exc
                    continue
                for frame in frames:
                    stamp = guess.stamp(frame.pts, frame.dts)
                    if stamp is None:
                        if last_ts == -math.inf:
                            if self.live:
                                continue  # a connection's first frame without a time: nothing to place it by
                            ts = 0.0
                        else:  # no time stamp at all: the nominal rate is the only clue left
                            ts = last_ts + (1.0 / self.fps if self.fps else 0.04)
                    else:
                        if self._origin is None:
                            self._origin = stamp
                        ts = self._to_seconds(stamp)
                    last_ts = ts
                    last_frame_at = time.monotonic()
                    index += 1
                    yield ts, frame
        except EOFError:
            return
        except (av.error.FFmpegError, OSError) as exc:
            if isinstance(exc, av.error.ExitError) or (
                    time.monotonic() - last_packet_at >= self.read_timeout_s * 0.95):
                raise VideoStalled(f"{self.name}: no data for {self.read_timeout_s:g} s (stalled)") from exc
            raise VideoError(f"{self.name}: read failed after {index} frame(s): {_describe(exc)}") from exc

    # -- packets (stream copy) ---------------------------------------------------------------------
    def _keep(self, packet: av.Packet) -> None:
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is not None and self._origin is None and self.live:
            self._origin = stamp  # a live stream counts from its first packet that has a time
        ts = self._to_seconds(stamp) if stamp is not None and self._origin is not None else None
        self._packets.append(SourcePacket(bytes(packet), packet.pts, packet.dts, bool(packet.is_keyframe), ts))
        if len(self._packets) > MAX_PENDING_PACKETS:  # nobody takes them (a consumer that only decodes)
            del self._packets[: len(self._packets) - MAX_PENDING_PACKETS]

    def take_packets(self) -> list[SourcePacket]:
        """The packets demuxed since the last call (with `keep_packets`), in demux order."""
        packets, self._packets = self._packets, []
        return packets

    def stream_template(self) -> StreamTemplate | None:
        """What a segment needs to carry this stream's packets, or None when Matroska cannot take its codec."""
        if not self._template_tried:
            self._template_tried = True
            try:
                self._template = StreamTemplate(self._stream)
            except (ValueError, av.error.FFmpegError) as exc:
                log.info("segments of this source are re-encoded: Matroska cannot carry its codec",
                         extra={"source": self.name, "codec": self._stream.codec_context.name,
                                "error": _describe(exc)})
        return self._template

    def frames(self, sample_fps: float | None = None, *, start_s: float = 0.0,
               end_s: float | None = None) -> Iterator[VideoFrame]:
        """Frames in [start_s, end_s], one per 1/sample_fps seconds of stream time (all without a rate)."""
        decoded = self._frames_from(start_s) if start_s > SEEK_AHEAD_S and not self.live else self.decoded()
        sampler = Sampler(sample_fps, start_s)
        for ts, frame in decoded:
            if ts + 1e-6 < start_s:
                continue
            if end_s is not None and ts > end_s + 1e-6:
                return
            if sampler.take(ts):
                yield VideoFrame(ts, frame.to_ndarray(format="bgr24"))

    def timestamps(self) -> list[float]:
        """Presentation times of every frame of a file, in order, from its packets (nothing decoded)."""
        if self.live:
            raise VideoError(f"{self.name}: a live stream has no list of frame times")
        self._ensure_origin()
        stamps: list[float] = []
        try:
            with av.open(self.uri, mode="r", timeout=(self.open_timeout_s, self.read_timeout_s)) as scan:
                for packet in scan.demux(scan.streams.video[0]):
                    if packet.pts is not None and packet.size > 0:
                        stamps.append(self._to_seconds(packet.pts))
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(f"{self.name}: cannot read: {_describe(exc)}") from exc
        return sorted(stamps)

    def read_at(self, times: Sequence[float]) -> list[VideoFrame]:
        """The frame nearest each wanted time (files), in time order, one per distinct frame.

        Decodes forward and seeks (to the keyframe before) when the next wanted time is far ahead, so a
        minute of H.264 is not decoded whole for eight frames.
        """
        wanted = sorted(set(times))
        found: dict[float, VideoFrame] = {}
        frames: Iterator[tuple[float, av.VideoFrame]] | None = None
        previous: tuple[float, av.VideoFrame] | None = None  # last frame before the current target
        ahead: tuple[float, av.VideoFrame] | None = None  # first frame at or after it
        for target in wanted:
            position = (ahead or previous or (-math.inf, None))[0]
            if frames is None or target - position > SEEK_AHEAD_S:
                frames = self._frames_from(target)
                previous, ahead = None, None
            while True:
                if ahead is None:
                    ahead = next(frames, None)
                    if ahead is None:
                        break
                if ahead[0] >= target:
                    break
                previous, ahead = ahead, None
            choices = [c for c in (previous, ahead) if c is not None]
            if not choices:
                continue
            ts, frame = min(choices, key=lambda c: abs(c[0] - target))
            if ts not in found:
                found[ts] = VideoFrame(ts, frame.to_ndarray(format="bgr24"))
        return [found[t] for t in sorted(found)]

    def _frames_from(self, target_s: float) -> Iterator[tuple[float, av.VideoFrame]]:
        """Decoded frames from the keyframe at or before `target_s` (from the start when near it)."""
        if target_s <= SEEK_AHEAD_S:
            self._rewind()
            return self.decoded()
        self._seek(target_s)
        frames = self.decoded()
        first = next(frames, None)
        if first is None or first[0] > target_s + 1e-3:
            # An imprecise index put us past the target: decode from the start instead.
            self._rewind()
            return self.decoded()
        return itertools.chain([first], frames)

    def _rewind(self) -> None:
        if self.live:
            raise VideoError(f"{self.name}: a live stream cannot be rewound")
        self._container.close()
        self._container = self._open()

    def _seek(self, target_s: float) -> None:
        self._ensure_origin()
        stream = self._stream
        assert self._origin is not None
        offset = int(target_s / stream.time_base) + self._origin
        try:
            self._container.seek(offset, stream=stream, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(f"{self.name}: cannot seek to {target_s:.3f} s: {_describe(exc)}") from exc


class _StampGuess:
    """ffmpeg's best-effort time stamp: the frame's pts unless pts went backwards more often than dts.

    Packed B-frames in AVI (Megamind.avi's MPEG-4) come out with shuffled pts but ordered dts.
    """

    def __init__(self) -> None:
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts: int | None = None
        self.last_dts: int | None = None

    def stamp(self, pts: int | None, dts: int | None) -> int | None:
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        if pts is not None and (dts is None or self.faulty_pts <= self.faulty_dts):
            return pts
        return dts


@dataclass(frozen=True)
class SourcePacket:
    """One demuxed packet's bytes and times (in its stream's time base), independent of the reader's life."""

    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool
    ts: float | None  # presentation time in the reader's seconds (None: the packet has no time stamp)

    @property
    def stamp(self) -> int | None:
        return self.pts if self.pts is not None else self.dts


class StreamTemplate:
    """A copy of a source stream's codec parameters that outlives the reader (a reconnect closes it).

    Held as a stream of an output container that is never started: PyAV copies codec parameters only from
    a live stream, and the reader's stream is freed when its connection closes. Raises ValueError when
    Matroska cannot carry the codec (Cinepak, for one): that source's segments are re-encoded.
    """

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        self._holder = av.open(io.BytesIO(), mode="w", format="matroska")
        self.stream = self._holder.add_stream_from_template(stream)
        self.time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        self.codec = stream.codec_context.name
        self.width = int(stream.codec_context.width or 0)
        self.height = int(stream.codec_context.height or 0)
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate and 0 < float(rate) < 1000 else 0.0


@dataclass
class PacketBatch:
    """The packets demuxed since the previous sampled frame, handed to the recorder with that frame.

    `shift_s` places `SourcePacket.ts` on the frame's time base (a live source re-anchors its times)."""

    template: StreamTemplate
    packets: list[SourcePacket] = field(default_factory=list)
    shift_s: float = 0.0


def open_video(uri: str | Path, *, open_timeout_s: float = 10.0, read_timeout_s: float = 10.0) -> VideoReader:
    return VideoReader(uri, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s)


# -- writing ------------------------------------------------------------------------------------------
SegmentCodec = Literal["mjpeg", "h264"]
SEGMENT_SUFFIX = ".mkv"
SEGMENT_CONTENT_TYPE = "video/x-matroska"
_MS = Fraction(1, 1000)


class SegmentWriter:
    """A Matroska segment whose frames keep their real times (pts in milliseconds from `write`'s ts).

    `h264` (libx264 ultrafast, zerolatency, one thread) costs about what `mjpeg` costs a frame on the
    2-core gateway and is about 5x smaller (benchmarks/bench_segment_writer.py), so it is the default;
    `mjpeg` has no state between frames. Raises OSError subclasses (av's) on I/O failure.
    """

    def __init__(self, path: str | Path, width: int, height: int, *, codec: SegmentCodec = "h264",
                 quality: int = 90, nominal_fps: float = 5.0) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.frames = 0
        self._last_pts = -1
        self._container = av.open(str(self.path), mode="w", format="matroska")
        try:
            rate = Fraction(nominal_fps).limit_denominator(1000) if nominal_fps > 0 else Fraction(5)
            if codec == "h264":
                # A keyframe every ~2 s: the verifier's seek decodes at most that much to reach a frame.
                stream = self._container.add_stream("libx264", rate=rate, options={
                    "preset": "ultrafast", "tune": "zerolatency", "crf": str(_crf(quality)),
                    "g": str(max(1, round(2 * float(rate))))})
                stream.pix_fmt = "yuv420p"
                stream.codec_context.thread_count = 1
            else:
                stream = self._container.add_stream("mjpeg", rate=rate)
                stream.pix_fmt = "yuvj420p"
                stream.codec_context.qscale = True
                stream.codec_context.global_quality = _qscale(quality) * 118  # FF_QP2LAMBDA
            # 4:2:0 needs even sizes: an odd column or row is dropped (the encoder scales to this).
            stream.width, stream.height = width - width % 2, height - height % 2
            stream.time_base = _MS
            stream.codec_context.time_base = _MS
        except BaseException:
            self._container.close()
            raise
        self._stream = stream

    def write(self, ts: float, image: np.ndarray) -> None:
        """`ts`: seconds from the segment start; equal milliseconds are nudged (pts must increase)."""
        pts = max(round(ts * 1000), self._last_pts + 1)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = pts
        frame.time_base = _MS
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._last_pts = pts
        self.frames += 1

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()

    def abort(self) -> None:
        """Close without flushing (after an error); never raises."""
        try:
            self._container.close()
        except Exception:  # the writer is being thrown away
            pass


def _qscale(quality: int) -> int:
    """JPEG-like quality 1..100 → ffmpeg's qscale 2 (best) .. 31."""
    return int(min(31, max(2, round(2 + (100 - quality) * 29 / 99))))


def _crf(quality: int) -> int:
    return int(min(40, max(18, round(51 - quality * 0.3))))


# -- stream copy ----------------------------------------------------------------------------------------
# A camera-days service keeps this ring bounded whatever the camera sends (a 10 s GOP at 8 Mbit/s is 10 MB).
RING_MAX_BYTES = 32 * 1024 * 1024
RING_MAX_PACKETS = 2048


@dataclass
class _Gop:
    key_ts: float
    packets: list[tuple[float | None, SourcePacket]]
    size: int = 0


class PacketRing:
    """A camera's demuxed packets since the last keyframe at or before `pre_roll_s` ago, so that a segment can
    start at a keyframe at or before the event (a decoder needs one). Bounded in bytes and packets: over a
    bound the oldest GOP goes; a single GOP over it is dropped whole and the ring waits for the next keyframe.
    Packets before the first keyframe are useless to a segment and are not kept."""

    def __init__(self, pre_roll_s: float, max_bytes: int = RING_MAX_BYTES, max_packets: int = RING_MAX_PACKETS) -> None:
        self.pre_roll_s = pre_roll_s
        self.max_bytes = max_bytes
        self.max_packets = max_packets
        self.template: StreamTemplate | None = None
        self._gops: deque[_Gop] = deque()
        self.size = 0
        self.count = 0

    def add(self, batch: PacketBatch, now_ts: float) -> None:
        """Keeps the batch's packets (times on the frame base); `now_ts`: the time of the frame they came with."""
        if batch.template is not self.template:  # a new connection: its packets do not continue the old ones
            self.clear()
            self.template = batch.template
        for packet in batch.packets:
            ts = packet.ts + batch.shift_s if packet.ts is not None else None
            if packet.keyframe:
                self._gops.append(_Gop(ts if ts is not None else now_ts, []))
            elif not self._gops:
                continue
            gop = self._gops[-1]
            gop.packets.append((ts, packet))
            gop.size += len(packet.data)
            self.size += len(packet.data)
            self.count += 1
        while len(self._gops) > 1 and self._gops[1].key_ts <= now_ts - self.pre_roll_s:
            self._drop_oldest()
        while self._gops and (self.size > self.max_bytes or self.count > self.max_packets):
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        gop = self._gops.popleft()
        self.size -= gop.size
        self.count -= len(gop.packets)

    def clear(self) -> None:
        self._gops.clear()
        self.size = self.count = 0

    def since(self, target_ts: float) -> list[tuple[float | None, SourcePacket]]:
        """Packets from the latest keyframe at or before `target_ts` (the oldest kept one when none is).

        A keyframe without a time stamp (an RTSP session's first packet comes before the stream's clock)
        cannot place a segment on the source's time base: its GOP is never a start."""
        chosen = None
        for index, gop in enumerate(self._gops):
            if gop.packets[0][1].stamp is None:
                continue
            if gop.key_ts <= target_ts + 1e-6 or chosen is None:
                chosen = index
        if chosen is None:
            return []
        return [entry for gop in itertools.islice(self._gops, chosen, None) for entry in gop.packets]


class PacketSegmentWriter:
    """A Matroska segment of a source's own packets (stream copy: nothing decoded or re-encoded).

    Times are rebased to milliseconds from `origin` (the first keyframe's stamp, in the source time base),
    so the segment's first frame is at 0 and each frame keeps its source spacing. Leading pictures that
    come before that keyframe in presentation order (open GOP) cannot be decoded and are left out.
    Raises OSError subclasses (av's) on I/O failure.
    """

    def __init__(self, path: str | Path, template: StreamTemplate, origin: int) -> None:
        self.path = Path(path)
        self.width, self.height = template.width, template.height
        self.frames = 0
        self._time_base = template.time_base
        self._origin = origin
        self._last_dts: int | None = None
        self._container = av.open(str(self.path), mode="w", format="matroska")
        try:
            self._stream = self._container.add_stream_from_template(template.stream)
            self._stream.time_base = _MS
        except BaseException:
            self._container.close()
            raise

    def _ms(self, stamp: int | None) -> int | None:
        return None if stamp is None else round((stamp - self._origin) * self._time_base * 1000)

    def write(self, packet: SourcePacket) -> None:
        pts, dts = self._ms(packet.pts), self._ms(packet.dts)
        if pts is None and dts is None:
            dts = (self._last_dts + 1) if self._last_dts is not None else 0
        if pts is not None and pts < 0 and not packet.keyframe:
            return  # a leading picture of an open GOP: it refers to the GOP before the segment
        if dts is not None and self._last_dts is not None and dts <= self._last_dts:
            dts = self._last_dts + 1  # rounding to milliseconds must not make decode times collide
            if pts is not None and pts < dts:
                pts = dts
        out = av.Packet(packet.data)
        out.pts, out.dts = pts, dts
        out.time_base = _MS
        out.is_keyframe = packet.keyframe
        out.stream = self._stream
        self._container.mux(out)
        if dts is not None:
            self._last_dts = dts
        self.frames += 1

    def close(self) -> None:
        self._container.close()

    def abort(self) -> None:
        """Close after an error; never raises."""
        try:
            self._container.close()
        except Exception:  # the writer is being thrown away
            pass
