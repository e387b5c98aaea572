"""Reading a candidate's clip segment (or still image) and choosing which of its frames to examine."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from cloud.verifier.decision import Span, frame_tolerance, in_spans, span_distance
from contracts import Candidate
from models.video import VideoError, VideoReader

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
Frame = tuple[float, np.ndarray]


class ClipReadError(ValueError):
    """The clip or image cannot be read: missing, empty, corrupt or in a format that cannot be decoded."""


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def segment_time(candidate: Candidate, clip_offset_s: float) -> tuple[float, float, float]:
    """(event start, event end, best frame) in seconds from the segment start.

    The candidate's offsets count from the start of the source clip; the segment the gateway wrote
    starts `clip.offset_s` into it.
    """
    return (
        candidate.start_offset_s - clip_offset_s,
        candidate.end_offset_s - clip_offset_s,
        candidate.best_frame_offset_s - clip_offset_s,
    )


def clip_offset(candidate: Candidate) -> float:
    return candidate.clip.offset_s if candidate.clip is not None else 0.0



def track_spans(candidate: Candidate, clip_offset_s: float) -> tuple[Span, ...]:
    """Where the gateway saw the person: the union of its tracks' [first_ts, last_ts], in segment seconds.

    Overlapping spans are merged. Without tracks, the event itself is the span.
    """
    raw = sorted(
        (min(t.first_ts, t.last_ts) - clip_offset_s, max(t.first_ts, t.last_ts) - clip_offset_s)
        for t in candidate.tracks
    )
    if not raw:
        start, end, _ = segment_time(candidate, clip_offset_s)
        raw = [(min(start, end), max(start, end))]
    merged: list[list[float]] = []
    for lo, hi in raw:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


def select_indices(
    timestamps: Sequence[float], start: float, end: float, best: float, max_frames: int, margin: float,
    spans: Sequence[Span] = (), min_span_frames: int = 0,
) -> list[int]:
    """The frame nearest the gateway's best frame plus frames evenly spaced over where the person was.

    With `spans` (the gateway's track spans, segment seconds) the frames come from inside them: that is
    where the gateway saw the person, so pre-roll and margin frames where nobody is there yet do not
    dilute the temporal rule. Only when the spans hold fewer than `min_span_frames` frames are the
    nearest frames outside them added, at most `margin` seconds away. Without spans (or when no frame
    lies in them), the event window widened by `margin` on both sides. Falls back to the whole segment
    when no frame lies in the window (offsets that do not match the segment should not make the verifier
    blind).
    """
    if not timestamps:
        return []
    inside: list[int] = []
    if spans:
        tolerance = frame_tolerance(timestamps)
        inside = [i for i, t in enumerate(timestamps) if in_spans(t, spans, tolerance)]
        if inside and len(inside) < min_span_frames:
            taken = set(inside)
            near = sorted(
                (i for i, t in enumerate(timestamps)
                 if i not in taken and span_distance(t, spans) <= margin + tolerance),
                key=lambda i: span_distance(timestamps[i], spans),
            )
            inside = sorted(inside + near[: min_span_frames - len(inside)])
    if not inside:
        lo, hi = min(start, end) - margin, max(start, end) + margin
        inside = [i for i, t in enumerate(timestamps) if lo <= t <= hi]
    if not inside:
        log.warning("no frame in the event window; examining the whole segment",
                    extra={"window": [lo, hi], "segment": [timestamps[0], timestamps[-1]]})
        inside = list(range(len(timestamps)))
    best_index = min(inside, key=lambda i: abs(timestamps[i] - best))
    chosen = {best_index}
    rest = max_frames - 1
    if rest > 0 and len(inside) > 1:
        # Even spacing over the window, so a person who walks through it is sampled all the way.
        for k in range(rest):
            pos = round(k * (len(inside) - 1) / max(1, rest - 1)) if rest > 1 else len(inside) // 2
            chosen.add(inside[pos])
    # Evenly spaced picks may coincide with the best frame; fill up with the nearest unused frames.
    for i in sorted(inside, key=lambda i: abs(timestamps[i] - best)):
        if len(chosen) >= min(max_frames, len(inside)):
            break
        chosen.add(i)
    return sorted(chosen)


def read_image(path: Path) -> list[Frame]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ClipReadError(f"cannot read image {path}: missing, empty or not a JPEG/PNG OpenCV can decode")
    return [(0.0, image)]


def read_segment(
    path: Path, candidate: Candidate, max_frames: int, margin: float, min_span_frames: int = 0
) -> tuple[list[Frame], int]:
    """Decode only the frames worth examining. Returns them and the number of frames in the segment.

    Times are the segment's own presentation times (`models.video`, the gateway's reader), so frames are
    found where the gateway saw them even when the source's frame rate varied.
    """
    if not path.is_file():
        raise ClipReadError(f"clip {path} does not exist")
    if path.stat().st_size == 0:
        raise ClipReadError(f"clip {path} is empty")
    try:
        with VideoReader(path) as reader:
            stamps = reader.timestamps()  # packets only: nothing decoded yet
            if not stamps:
                raise ClipReadError(f"clip {path} has no decodable frame")
            offset = clip_offset(candidate)
            start, end, best = segment_time(candidate, offset)
            wanted = select_indices(stamps, start, end, best, max_frames, margin,
                                    track_spans(candidate, offset), min_span_frames)
            decoded = reader.read_at([stamps[i] for i in wanted])
    except VideoError as exc:
        raise ClipReadError(f"clip {path}: {exc}") from exc
    if len(decoded) < len(wanted):
        got = {f.ts for f in decoded}
        missing = [round(stamps[i], 3) for i in wanted if stamps[i] not in got]
        log.warning("some chosen frames do not decode", extra={"clip": str(path), "missing_ts": missing})
    if not decoded:
        raise ClipReadError(f"clip {path}: none of the chosen frames decodes")
    return [(f.ts, f.image) for f in decoded], len(stamps)
