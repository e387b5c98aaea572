"""A browser-playable MP4 of a stored clip, made once with PyAV and cached.

The gateway writes Matroska/H.264 segments (or hands over the camera's own clip: often MJPG in AVI).
Browsers seek badly in MKV and cannot play MJPG at all, so the console offers an MP4 beside the
original: H.264 is remuxed (packets copied, no re-encoding: cheap), anything else is re-encoded to H.264
(libx264, ultrafast) up to `MAX_SECONDS`. Results live in a bounded cache folder (oldest dropped first);
one lock per clip so two viewers opening the same event convert it once.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from fractions import Fraction
from pathlib import Path

log = logging.getLogger(__name__)

MAX_SECONDS = 600.0  # a re-encode stops here; the original stays downloadable whole
H264 = frozenset({"h264"})


class ClipNotConvertible(ValueError):
    """The clip has no video stream PyAV can read."""


def _remux(src: Path, dst: Path) -> None:
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4",
                                           container_options={"movflags": "+faststart"}) as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        packets = [p for p in inp.demux(vin) if p.size and p.pts is not None]  # no end-of-stream flush packet
        if any(p.dts is None for p in packets):
            # Matroska keeps no decode times; with B-frames the demuxer leaves the first ones unset and MP4
            # needs them. Decode order is the file's order: each packet gets the next presentation time,
            # shifted back just enough that no frame is decoded after it is shown.
            ordered = sorted(p.pts for p in packets)
            delay = max(0, *(o - p.pts for o, p in zip(ordered, packets, strict=True)))
            for o, p in zip(ordered, packets, strict=True):
                p.dts = o - delay
        for packet in packets:
            packet.stream = vout
            out.mux(packet)


def _even(value: int) -> int:
    return max(2, value - value % 2)


def _reencode(src: Path, dst: Path) -> None:
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4",
                                           container_options={"movflags": "+faststart"}) as out:
        vin = inp.streams.video[0]
        fps = vin.average_rate or vin.guessed_rate or Fraction(25, 1)
        vout = out.add_stream("libx264", rate=fps)
        vout.width, vout.height = _even(vin.codec_context.width), _even(vin.codec_context.height)
        vout.pix_fmt = "yuv420p"
        vout.options = {"preset": "ultrafast", "crf": "26"}
        vout.codec_context.time_base = Fraction(1, 1000)
        last = -1
        for index, frame in enumerate(inp.decode(vin)):
            seconds = frame.time if frame.time is not None else index / float(fps)
            if seconds > MAX_SECONDS:
                log.info("clip cut for the browser", extra={"clip": src.name, "max_s": MAX_SECONDS})
                break
            pts = max(round(seconds * 1000), last + 1)  # strictly increasing, in ms
            last = pts
            image = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
            image.pts, image.time_base = pts, Fraction(1, 1000)
            for packet in vout.encode(image):
                out.mux(packet)
        for packet in vout.encode(None):
            out.mux(packet)


def make_playable(src: Path, dst: Path) -> str:
    """Write an MP4 of `src` to `dst`; returns "remux" or "reencode" (what it had to do)."""
    import av

    try:
        with av.open(str(src)) as probe:
            if not probe.streams.video:
                raise ClipNotConvertible(f"{src.name} has no video stream")
            codec = probe.streams.video[0].codec_context.name
    except av.FFmpegError as exc:
        raise ClipNotConvertible(f"{src.name} is not a readable video: {exc}") from exc
    try:
        if codec in H264:
            _remux(src, dst)
            return "remux"
        _reencode(src, dst)
        return "reencode"
    except av.FFmpegError as exc:
        raise ClipNotConvertible(f"{src.name} could not be converted: {exc}") from exc


class PlayableCache:
    """MP4s by event id in one folder, at most `max_bytes` in all (least recently used go first)."""

    def __init__(self, root: Path, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.root = root
        self.max_bytes = max_bytes
        root.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            if len(self._locks) > 1024:  # bounded: forget idle locks
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(name, threading.Lock())

    def get(self, name: str, fetch) -> Path:
        """The cached MP4 called `name` (an event id), made from the file `fetch(workdir)` returns."""
        path = self.root / f"{name}.mp4"
        with self._lock(name):
            if path.is_file():
                os.utime(path)  # recently used
                return path
            with tempfile.TemporaryDirectory(dir=self.root, prefix=".work-") as work:
                src = fetch(Path(work))
                tmp = Path(work) / "out.mp4"
                how = make_playable(src, tmp)
                os.replace(tmp, path)
            log.info("playable clip made", extra={"event_id": name, "how": how, "bytes": path.stat().st_size})
        self._trim(keep=path)
        return path

    def _trim(self, keep: Path) -> None:
        files = sorted((p for p in self.root.glob("*.mp4") if p != keep), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files) + keep.stat().st_size
        for old in files:
            if total <= self.max_bytes:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
