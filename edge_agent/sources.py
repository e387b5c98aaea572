"""Where frames come from: a video file, a folder of one-minute clips, or a live stream (RTSP, HTTP).

All of it reads through `models.video` (PyAV), the reader the cloud verifier uses too, so a frame's `ts`
means the same on both sides: the container's presentation time (tree.avi's Cinepak codes far fewer
frames than its nominal rate; a camera's variable rate keeps its real spacing).

A live source never gives up: `LiveSource` reads on its own thread with bounded waits, reconnects with
backoff, and tells the agent about each break with a `SourceGap`.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from contracts import redact_uri
from contracts.telemetry import CameraState, CameraStatus
from models.video import PacketBatch, Sampler, VideoError, VideoReader, VideoStalled, is_live_uri

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm", ".ts", ".mpg", ".mpeg", ".flv"}
MAX_SAMPLE_FPS = 60.0
# A live stream's own clock may not jump further than this from the wall clock before ts is re-anchored.
MAX_DRIFT_S = 10.0
ERROR_CHARS = 512
CLOSE_WAIT_S = 1.0


class SourceError(RuntimeError):
    """A clip or stream that cannot be read; the agent logs it and goes on with the next one."""


@dataclass
class Frame:
    ts: float  # seconds on the source's time base (a file: from its first frame; live: continuous)
    image: np.ndarray  # BGR
    wall: float  # epoch seconds of the frame
    # The source's own packets since the previous sampled frame (stream copy of the event segment); None
    # when the reader keeps none or Matroska cannot carry the codec (the segment is then re-encoded).
    packets: PacketBatch | None = None


@dataclass
class SourceGap:
    """A live source lost its stream between two connections: close what is open, reset motion."""

    reason: str


def is_live(uri: str) -> bool:
    """rtsp / rtsps / rtmp / http / https URLs."""
    return is_live_uri(uri)


class Clip:
    """One video file (or one session of a stream URL) with a lazily decoded, sampled frame iterator."""

    def __init__(self, reader: VideoReader, wall_start: float) -> None:
        self._reader = reader
        self.uri = reader.uri
        self.is_stream = reader.live
        self.name = reader.name if self.is_stream else Path(reader.uri).name
        self.wall_start = wall_start  # epoch seconds of the first frame (mtime − duration; now for streams)
        self.width = reader.width
        self.height = reader.height
        self.fps = reader.fps

    def frames(self, sample_fps: float, keep_packets: bool = False) -> Iterator[Frame]:
        """One frame per 1/sample_fps seconds of stream time; only those are converted to BGR. With
        `keep_packets`, each frame carries the packets demuxed since the previous one (stream copy)."""
        sampler = Sampler(sample_fps)
        decoded = 0
        template = self._reader.stream_template() if keep_packets else None
        self._reader.keep_packets = template is not None
        try:
            for ts, frame in self._reader.decoded():
                decoded += 1
                if sampler.take(ts):
                    batch = PacketBatch(template, self._reader.take_packets()) if template is not None else None
                    yield Frame(ts=ts, image=frame.to_ndarray(format="bgr24"), wall=self.wall_start + ts,
                                packets=batch)
        except VideoError as exc:
            raise SourceError(str(exc)) from exc
        finally:
            self._reader.close()
        if decoded == 0:
            raise SourceError(f"{self._reader.name}: no frame could be decoded (corrupt or unsupported video)")

    def close(self) -> None:
        self._reader.close()


def open_clip(uri: str, *, open_timeout_s: float = 10.0, read_timeout_s: float = 10.0) -> Clip:
    """A video file (a URL opens one bounded session of the stream; `LiveSource` is what keeps one up)."""
    try:
        reader = VideoReader(uri, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s)
    except VideoError as exc:
        raise SourceError(str(exc)) from exc
    wall_start = time.time()
    if not reader.live:
        wall_start = Path(uri).stat().st_mtime - (reader.duration or 0.0)
    return Clip(reader, wall_start)


def iter_clip_uris(source: str) -> Iterator[str]:
    """A file, a stream URL, or a folder of clips (sorted by name, which cameras stamp with the time)."""
    if not source or not source.strip():
        raise SourceError("no source given: name a video file, a folder of clips or a stream URL")
    source = source.strip()
    if is_live(source):
        yield source
        return
    path = Path(source)
    if path.is_dir():
        clips = [c for c in sorted(path.iterdir()) if c.suffix.lower() in VIDEO_SUFFIXES and c.is_file()]
        if not clips:
            raise SourceError(f"{source}: the folder holds no video ({', '.join(sorted(VIDEO_SUFFIXES))})")
        for child in clips:
            yield str(child)
        return
    if not path.exists():
        raise SourceError(f"{source}: no such file or folder")
    yield source


class LiveSource:
    """A camera stream that is kept up for as long as the agent runs.

    A reader thread decodes (PyAV, bounded open and read waits), converts only sampled frames, and puts
    them in a bounded queue; when the agent is slower, the oldest frame is dropped and counted. No frame
    for `stall_timeout_s` closes the connection; every failure reconnects after an exponential backoff
    with full jitter. `ts` is continuous and strictly increasing across connections: the monotonic clock
    at a connection's first frame plus the stream's own pts offset within the connection.
    """

    def __init__(self, uri: str, camera_id: str, sample_fps: float, *, stall_timeout_s: float = 5.0,
                 open_timeout_s: float = 10.0, backoff_min_s: float = 0.5, backoff_max_s: float = 30.0,
                 queue_size: int = 4, keep_packets: bool = True) -> None:
        if not uri or not uri.strip():
            raise SourceError("no stream URL given")
        if stall_timeout_s <= 0 or open_timeout_s <= 0 or backoff_min_s <= 0 or backoff_max_s < backoff_min_s:
            raise ValueError("timeouts and backoff must be positive, backoff_max_s ≥ backoff_min_s")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.uri = uri.strip()
        self.camera_id = camera_id
        self.source = redact_uri(self.uri)
        self.stall_timeout_s = stall_timeout_s
        self.open_timeout_s = open_timeout_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.queue_size = queue_size
        self.keep_packets = keep_packets  # frames carry the stream's packets: segments are a stream copy
        self._sample_fps = self._checked_fps(sample_fps)
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: deque[Frame | SourceGap] = deque()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._last_ts = -1.0
        self._delivered = 0  # frames queued from the current connection (reader thread only)
        # status, under the lock
        self._state: CameraState = "connecting"
        self._last_frame_at: float | None = None
        self._frames = 0
        self._dropped = 0
        self._reconnects = 0
        self._last_error: str | None = None

    # -- settings and status ----------------------------------------------------------------------
    @staticmethod
    def _checked_fps(fps: float) -> float:
        if not 0 < fps <= MAX_SAMPLE_FPS:
            raise ValueError(f"sample_fps must be in (0, {MAX_SAMPLE_FPS:g}], got {fps!r}")
        return float(fps)

    @property
    def sample_fps(self) -> float:
        return self._sample_fps

    @sample_fps.setter
    def sample_fps(self, fps: float) -> None:
        self._sample_fps = self._checked_fps(fps)  # read by the reader thread at each frame

    @property
    def status(self) -> CameraStatus:
        with self._lock:
            return CameraStatus(
                state=self._state, source=self.source[:512],
                last_frame_at=(datetime.fromtimestamp(self._last_frame_at, tz=UTC)
                               if self._last_frame_at is not None else None),
                frames=self._frames, dropped_frames=self._dropped, reconnects=self._reconnects,
                last_error=self._last_error)

    def _set_state(self, state: CameraState, message: str, level: int = logging.INFO, *,
                   reason: str | None = None, retry_in_s: float | None = None, **extra: object) -> None:
        with self._lock:
            if self._state == "stopped":
                return  # the reader thread finishing a bounded wait after close(): nothing to say
            self._state = state
            if reason is not None:
                self._last_error = redact_uri(reason)[:ERROR_CHARS]
        fields: dict[str, object] = {"camera_id": self.camera_id, "source": self.source, "state": state, **extra}
        if reason is not None:
            fields["reason"] = redact_uri(reason)[:ERROR_CHARS]
        if retry_in_s is not None:
            fields["retry_in_s"] = round(retry_in_s, 2)
        log.log(level, message, extra=fields)

    # -- the consumer side --------------------------------------------------------------------------
    def frames(self, stop: threading.Event) -> Iterator[Frame | SourceGap]:
        """Frames and gaps until `stop` is set (then the source is closed). Reading starts at this call."""
        self._start()
        return self._iterate(stop)

    def _iterate(self, stop: threading.Event) -> Iterator[Frame | SourceGap]:
        try:
            while not stop.is_set() and not self._halt.is_set():
                with self._ready:
                    if not self._queue:
                        self._ready.wait(timeout=0.1)
                    item = self._queue.popleft() if self._queue else None
                if item is not None:
                    yield item
        finally:
            self.close()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"source-{self.camera_id}", daemon=True)
        self._set_state("connecting", "camera source connecting")
        self._thread.start()

    def close(self) -> None:
        """Stop reading. Waits at most CLOSE_WAIT_S: a reader thread still inside a bounded open or read
        (up to open_timeout_s / stall_timeout_s) closes its connection and ends on its own right after."""
        if self._halt.is_set():
            return
        self._halt.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=CLOSE_WAIT_S)
        with self._ready:
            self._queue.clear()
            self._ready.notify_all()
        self._set_state("stopped", "camera source stopped")

    def _put(self, item: Frame | SourceGap) -> None:
        with self._ready:
            if isinstance(item, SourceGap):
                if self._queue and isinstance(self._queue[-1], SourceGap):
                    return  # one gap stands for any number of failed attempts: the queue stays bounded
            else:
                waiting = sum(1 for q in self._queue if isinstance(q, Frame))
                if waiting >= self.queue_size:
                    oldest = next(i for i, q in enumerate(self._queue) if isinstance(q, Frame))
                    dropped = self._queue[oldest]
                    del self._queue[oldest]
                    self._dropped += 1
                    assert isinstance(dropped, Frame)
                    self._hand_on_packets(dropped, oldest, item)
                self._frames += 1
                self._last_frame_at = item.wall
            self._queue.append(item)
            self._ready.notify()

    def _hand_on_packets(self, dropped: Frame, index: int, newest: Frame) -> None:
        """A dropped frame's packets go to the next frame: the picture is skipped, the segment is not cut."""
        if dropped.packets is None or not dropped.packets.packets:
            return
        following = next((q for q in itertools.islice(self._queue, index, None) if isinstance(q, Frame)), newest)
        if following.packets is not None and following.packets.template is dropped.packets.template:
            following.packets.packets[:0] = dropped.packets.packets

    # -- the reader thread --------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        ever_connected = False
        while not self._halt.is_set():
            self._delivered = 0
            opened = False
            try:
                reader = VideoReader(self.uri, open_timeout_s=self.open_timeout_s,
                                     read_timeout_s=self.stall_timeout_s, keep_packets=self.keep_packets)
            except Exception as exc:
                reason = str(exc) if isinstance(exc, VideoError) else self._unexpected(exc)
                state: CameraState = "reconnecting" if ever_connected else "connecting"
            else:
                if self._halt.is_set():
                    reader.close()
                    return
                if ever_connected:
                    with self._lock:
                        self._reconnects += 1
                ever_connected = opened = True
                self._set_state("connected", "camera source connected", width=reader.width,
                                height=reader.height, fps=round(reader.fps, 3), reconnects=self._reconnects)
                state = "reconnecting"
                try:
                    self._read(reader)
                    reason = "the stream ended"
                except VideoStalled as exc:
                    reason, state = str(exc), "stalled"
                except VideoError as exc:
                    reason = str(exc)
                except Exception as exc:  # a bug or a frame that cannot be converted: the camera stays up
                    reason = self._unexpected(exc)
                finally:
                    reader.close()
            if self._halt.is_set():
                return
            if self._delivered:
                failures = 0
                self._put(SourceGap(reason=redact_uri(reason)))
            # The exponent is capped: a camera that is down for months must not overflow the float.
            delay = random.uniform(0.0, min(self.backoff_max_s, self.backoff_min_s * 2 ** min(failures, 30)))
            failures += 1
            if not opened:
                message = "camera source unavailable; retrying"
            elif state == "stalled":
                message = "camera source stalled; reconnecting"
            else:
                message = "camera source lost; reconnecting"
            self._set_state(state, message, logging.WARNING, reason=reason, retry_in_s=delay, attempt=failures)
            if self._halt.wait(delay):
                return

    def _unexpected(self, exc: Exception) -> str:
        """An error the reader does not expect; logged without a traceback (it may quote the URL)."""
        reason = redact_uri(f"{type(exc).__name__}: {exc}")[:ERROR_CHARS]
        log.error("camera source reader failed", extra={"camera_id": self.camera_id, "source": self.source,
                                                        "error": reason})
        return reason

    def _read(self, reader: VideoReader) -> None:
        """Sampled frames of one connection into the queue (counted in `_delivered`). Raises on stall or error."""
        base: float | None = None  # ts = base + the frame's pts seconds within this connection
        wall_anchor = (0.0, 0.0)  # (ts, epoch) at the connection's first frame
        sampler = Sampler(self._sample_fps)
        template = reader.stream_template() if self.keep_packets else None
        reader.keep_packets = template is not None
        for pts_s, frame in reader.decoded():
            now = time.monotonic()
            if self._halt.is_set():
                return
            elapsed = now - self._t0
            ts = base + pts_s if base is not None else None
            if ts is None or ts <= self._last_ts or abs(ts - elapsed) > MAX_DRIFT_S:
                # A new connection, a clock that went back, or one that ran away: anchor on the monotonic clock.
                ts = max(elapsed, self._last_ts + 1e-3)
                base = ts - pts_s
                wall_anchor = (ts, time.time())
                if sampler.next_due > ts:
                    sampler.next_due = ts
            self._last_ts = ts
            sampler.fps = self._sample_fps
            if not sampler.take(ts):
                continue
            image = frame.to_ndarray(format="bgr24")
            assert base is not None
            batch = PacketBatch(template, reader.take_packets(), shift_s=base) if template is not None else None
            self._put(Frame(ts=ts, image=image, wall=wall_anchor[1] + (ts - wall_anchor[0]), packets=batch))
            self._delivered += 1
