"""The clip segment of an event, written locally as it happens (pre-roll included) so nothing waits in RAM.

A source whose frames come with their packets (`models.video.PacketBatch`: H.264/H.265 from RTSP, files in
H.264, MPEG-4, MJPEG...) gets a stream copy: the camera's own packets from the keyframe at or before the
pre-roll, remuxed, never decoded and re-encoded (what Frigate does with `-c copy`); it costs the gateway a
memcpy a packet instead of libx264 on every frame of an event. Frames without packets (a codec Matroska
cannot carry, a raw source) are encoded as before.

Segments are Matroska files whose frames keep their real times (pts in milliseconds, `models.video`):
the verifier reads them with the same reader and finds the gateway's frames where the gateway saw them,
whatever the source's frame rate did. A write that fails (full disk, read-only folder) raises
`SegmentError`, removes the partial file, and leaves the recorder ready for the next event.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import shutil
import threading
from collections import deque
from pathlib import Path
from typing import NoReturn

import av.error
import numpy as np

from contracts import ClipRef
from models.checksums import sha256_file
from models.video import (
    SEGMENT_CONTENT_TYPE,
    SEGMENT_SUFFIX,
    PacketBatch,
    PacketRing,
    PacketSegmentWriter,
    SegmentCodec,
    SegmentWriter,
)

log = logging.getLogger(__name__)

PRE_ROLL_S = 2.0
# However high the frame rate, the pre-roll never holds more frames than this (raw frames are large).
PRE_ROLL_MAX_FRAMES = 64


class SegmentError(OSError):
    """The segment could not be written; the event goes on without a clip, the recorder stays usable."""


class _BackgroundWriter:
    """Encodes a segment on a thread of its own, fed by a short queue, so that the camera's thread goes on
    gating and tracking (and the detector stays busy) while libx264 works: encoding was almost half of the
    camera thread's time during events. An error on the writer's thread is raised by the next `write` or by
    `close`, so the recorder's handling of a full disk is the same as when it wrote in line."""

    def __init__(self, writer: SegmentWriter | PacketSegmentWriter, depth: int = 16, name: str = "segment") -> None:
        self._writer = writer
        self._queue: queue.Queue[tuple | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._writer.write(*item)
                except BaseException as exc:  # raised on the camera's thread
                    self._error = exc

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, *item: object) -> None:
        """The writer's `write` arguments: (ts, frame) to encode, or (packet,) to copy."""
        self._raise_pending()
        self._queue.put(item)  # blocks when the writer is behind: back-pressure, memory stays bounded

    def _drain(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        self._drain()
        self._raise_pending()
        self._writer.close()

    def abort(self) -> None:
        self._drain()
        self._error = None
        self._writer.abort()


class SegmentRecorder:
    """Keeps the last PRE_ROLL_S seconds of the source; while an event is open, appends what follows to
    `<root>/<camera_id>/<event_id>.mkv` (written as `.part` until done), with the source's own time stamps.

    Frames that come with their packets are recorded by stream copy (a `PacketRing` is the pre-roll and the
    segment starts at its keyframe at or before the pre-roll); frames without are encoded (`codec`).
    """

    def __init__(self, root: Path, camera_id: str, fps: float, quality: int = 90,
                 codec: SegmentCodec = "h264") -> None:
        self.root = Path(root)
        self.camera_id = camera_id
        self.fps = fps  # the nominal (sample) rate, recorded in the ClipRef; times come from the frames
        self.quality = quality
        self.codec = codec
        self._pre: deque[tuple[float, np.ndarray]] = deque(maxlen=PRE_ROLL_MAX_FRAMES)
        self._ring = PacketRing(PRE_ROLL_S)
        self._last_ts: float | None = None
        self._writer: _BackgroundWriter | None = None
        self._path: Path | None = None
        self._offset = 0.0
        self._copying = False  # the segment being written is a stream copy
        # An event opened before the stream gave a usable keyframe (a connection's first one has no time):
        # its segment starts at the next one.
        self._awaiting_key = False
        self._clip_fps = fps

    @property
    def recording(self) -> bool:
        return self._writer is not None or self._awaiting_key

    @property
    def copies(self) -> bool:
        """Whether the next segment would be a stream copy (the source's packets are at hand)."""
        return self._ring.count > 0

    def push(self, ts: float, frame: np.ndarray, packets: PacketBatch | None = None) -> None:
        self._last_ts = ts
        if packets is not None:
            same_stream = packets.template is self._ring.template
            self._ring.add(packets, ts)
            self._pre.clear()  # the packets are the pre-roll: raw frames are not kept
            if self._awaiting_key:
                self._start_at_keyframe()
                return
            # Every packet goes on, even one the ring could not keep (a GOP over its bounds): no hole.
            # A new connection mid-event ends the segment with what the old one gave.
            if self._writer is not None and self._copying and same_stream:
                for packet in packets.packets:
                    self._write(packet)
            return
        if self._ring.count:
            self._ring.clear()  # packets stopped coming: back to encoding frames
        if self._writer is not None:
            if not self._copying:
                self._write(ts - self._offset, frame)
            return
        self._pre.append((ts, frame))
        while self._pre and ts - self._pre[0][0] > PRE_ROLL_S:
            self._pre.popleft()

    def start(self, event_id: str) -> None:
        if self.recording:
            raise RuntimeError("a segment is already being recorded")
        copied = self._ring.since(self._last_ts - PRE_ROLL_S) if self._last_ts is not None else []
        folder = self.root / self.camera_id
        if not copied and not self._pre and self._ring.template is not None:
            self._path = folder / f"{event_id}{SEGMENT_SUFFIX}"
            self._awaiting_key = True  # packets come, but no keyframe with a time yet
            return
        if not copied and not self._pre:
            raise RuntimeError("no frame to start a segment from")
        self._path = folder / f"{event_id}{SEGMENT_SUFFIX}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if copied:
                self._writer = self._copy_writer(copied)
            else:
                self._writer = self._encode_writer()
        except (OSError, ValueError, av.error.FFmpegError) as exc:
            self._fail("cannot start the segment", exc)
        if copied:
            for _, packet in copied:
                self._write(packet)
            return
        pre, self._pre = list(self._pre), deque(maxlen=PRE_ROLL_MAX_FRAMES)
        for ts, frame in pre:
            self._write(ts - self._offset, frame)

    def _start_at_keyframe(self) -> None:
        copied = self._ring.since(-math.inf)
        if not copied:
            return
        self._awaiting_key = False
        try:
            assert self._path is not None
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._copy_writer(copied)
        except (OSError, ValueError, av.error.FFmpegError) as exc:
            self._fail("cannot start the segment", exc)
        for _, packet in copied:
            self._write(packet)

    def _copy_writer(self, copied: list) -> _BackgroundWriter:
        template = self._ring.template
        assert template is not None and self._path is not None
        key_ts, key = copied[0]
        if key.stamp is None:
            raise ValueError("the keyframe has no time stamp")
        # The segment's times count from its keyframe; offset_s places it on the source's time base.
        self._offset = round(key_ts if key_ts is not None else self._last_ts or 0.0, 3)
        self._copying = True
        self._clip_fps = template.fps or self.fps
        return _BackgroundWriter(PacketSegmentWriter(self._partial(self._path), template, key.stamp),
                                 depth=256, name=f"segment-{self.camera_id}")

    def _encode_writer(self) -> _BackgroundWriter:
        assert self._path is not None
        height, width = self._pre[0][1].shape[:2]
        # The segment's times count from its first frame; offset_s places it on the source's time base.
        self._offset = round(self._pre[0][0], 3)
        self._copying = False
        self._clip_fps = self.fps
        return _BackgroundWriter(
            SegmentWriter(self._partial(self._path), width, height, codec=self.codec, quality=self.quality,
                          nominal_fps=self.fps), name=f"segment-{self.camera_id}")

    def _write(self, *item: object) -> None:
        assert self._writer is not None
        try:
            self._writer.write(*item)
        except (OSError, av.error.FFmpegError) as exc:
            self._fail("cannot write the segment", exc)

    def finish(self) -> ClipRef:
        if self._awaiting_key:
            self._fail("cannot write the segment", OSError("the stream gave no keyframe while the event lasted"))
        if self._writer is None or self._path is None:
            raise RuntimeError("no segment is being recorded")
        path = self._path
        try:
            self._writer.close()
            os.replace(self._partial(path), path)
            size = path.stat().st_size
            digest = sha256_file(path)
        except (OSError, av.error.FFmpegError) as exc:
            self._fail("cannot finish the segment", exc)
        self._writer, self._path = None, None
        fps = self._clip_fps
        return ClipRef(kind="local", uri=path.relative_to(self.root).as_posix(), content_type=SEGMENT_CONTENT_TYPE,
                       sha256=digest, size_bytes=size, offset_s=self._offset, fps=fps if fps > 0 else None)

    def abort(self) -> None:
        """Drop the segment being recorded (if any) and its partial file."""
        self._awaiting_key = False
        if self._writer is not None:
            self._writer.abort()
        if self._path is not None:
            for leftover in (self._partial(self._path), self._path):
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)
        self._writer, self._path = None, None

    def _fail(self, what: str, exc: BaseException) -> NoReturn:
        where = self._path
        self.abort()
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        log.error("segment write failed", extra={"camera_id": self.camera_id, "path": str(where),
                                                 "error": str(reason)})
        raise SegmentError(getattr(exc, "errno", None) or 0, f"{what} {where}: {reason}") from exc

    @staticmethod
    def _partial(path: Path) -> Path:
        return path.with_name(path.name + ".part")


CONTENT_TYPES = {".avi": "video/x-msvideo", ".mp4": "video/mp4", ".m4v": "video/mp4", ".mkv": "video/x-matroska",
                 ".mov": "video/quicktime", ".webm": "video/webm", ".ts": "video/mp2t"}


class SourceClipRecorder:
    """For one-minute clip files: the event's clip is the camera's own file, linked (or copied), not
    re-encoded. Costs no CPU on the gateway and keeps the camera's full quality and frame rate."""

    def __init__(self, root: Path, camera_id: str, source: Path, fps: float) -> None:
        self.root = Path(root)
        self.camera_id = camera_id
        self.source = Path(source)
        self.fps = fps
        self._event_id: str | None = None

    @property
    def recording(self) -> bool:
        return self._event_id is not None

    def push(self, ts: float, frame: np.ndarray, packets: PacketBatch | None = None) -> None:
        """Nothing to keep: the source file holds every frame."""

    def start(self, event_id: str) -> None:
        self._event_id = event_id

    def finish(self) -> ClipRef:
        if self._event_id is None:
            raise RuntimeError("no event is open")
        folder = self.root / self.camera_id
        target = folder / f"{self._event_id}{self.source.suffix.lower()}"
        self._event_id = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self.source, target)  # same file system: no copy at all
            except OSError:
                shutil.copyfile(self.source, target)
            ref = ClipRef(kind="local", uri=target.relative_to(self.root).as_posix(),
                          content_type=CONTENT_TYPES.get(target.suffix, "application/octet-stream"),
                          sha256=sha256_file(target), size_bytes=target.stat().st_size, offset_s=0.0,
                          fps=self.fps if self.fps > 0 else None)
        except OSError as exc:
            with contextlib.suppress(OSError):
                target.unlink(missing_ok=True)
            log.error("source clip could not be kept", extra={"camera_id": self.camera_id, "path": str(target),
                                                              "error": exc.strerror or str(exc)})
            raise SegmentError(exc.errno or 0, f"cannot keep the clip {target}: {exc.strerror or exc}") from exc
        return ref
