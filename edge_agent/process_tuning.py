"""Process-wide settings for a gateway: made once, before any camera or detector thread starts.

A gateway's cores belong to the detector (OpenVINO keeps one inference stream a core busy); everything
else the agent does is small per-frame work that must not fight it for the cores.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import cv2


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives threads their own malloc arenas (up to 8 per core); with a dozen camera, decoder and encoder
    threads they fragment, and a 24-camera-hour soak grew by ~100 MiB; with 2 it stayed flat. Applies to the
    arenas made after the call, so call it before any thread starts (MALLOC_ARENA_MAX in the environment,
    as the Greengrass recipe sets it, does the same from the first allocation)."""
    name = ctypes.util.find_library("c")
    if not name or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL(name).mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        pass


def single_threaded_opencv() -> None:
    """OpenCV splits even a 192x144 blur across its own worker pool; on a gateway whose cores are busy with
    inference, waking those workers costs more than the work (measured on 2 cores: ~1.2 ms of CPU a frame
    saved with one thread, docs/benchmarks-gateway.md). Camera threads already run in parallel."""
    cv2.setNumThreads(1)


def tune_gateway_process() -> None:
    limit_malloc_arenas()
    single_threaded_opencv()
