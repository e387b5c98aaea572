"""One detector shared by every camera of the gateway.

One compiled model and one OpenVINO AsyncInferQueue serve all cameras: each camera thread prepares its
frames (resize, colour) and submits them, so that preprocessing, decoding and tracking of one camera run
while the network works on another camera's frame; OpenVINO's throughput streams batch across cameras.
Each camera gets a client that hands its results back in the order that camera submitted them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.detector import Detection, PersonDetector, Region


@dataclass
class _Job:
    regions: list[Region]
    userdata: Any
    parts: dict[int, list[Detection]] = field(default_factory=dict)
    inputs: list[np.ndarray] = field(default_factory=list)  # shared with OpenVINO (no copy): alive until done


class SharedDetector:
    def __init__(self, detector: PersonDetector, jobs: int | None = None) -> None:
        import openvino as ov

        self.detector = detector
        # Two requests per inference stream by default: a stream that finishes finds the next frame already
        # queued instead of waiting for a Python thread to wake and submit one. On 2 cores (FP32, vtest.avi,
        # interleaved A/B): +7 % agent frames/s, and raw inference itself +4-12 % (docs/benchmarks-gateway.md).
        self.jobs = max(1, jobs or 2 * detector.optimal_requests)
        self._queue = ov.AsyncInferQueue(detector._compiled, self.jobs)
        self._queue.set_callback(self._on_done)
        self._submit_lock = threading.Lock()

    def client(self) -> DetectorClient:
        return DetectorClient(self)

    def _on_done(self, request: Any, userdata: tuple[DetectorClient, int, int, float | None]) -> None:
        client, seq, index, floor = userdata
        try:
            dets = self.detector.postprocess(
                request.get_output_tensor(0).data.copy(), request.get_output_tensor(1).data.copy(),
                client.region_of(seq, index), floor,
            )
        except BaseException as exc:  # surfaced on the camera's thread, not lost in OpenVINO's
            client.fail(exc)
            return
        client.done(seq, index, dets)

    def _start(self, tensor: np.ndarray, userdata: tuple) -> None:
        with self._submit_lock:  # start_async blocks while every request is busy: that is the back-pressure
            # Shared, not copied into the request's own tensor: the caller keeps `tensor` alive and unchanged
            # until its result is in (a fresh array a frame; the copy cost ~0.07 ms of CPU a frame on vtest).
            self._queue.start_async({0: tensor}, userdata, share_inputs=True)
            self.detector.calls += 1

    def wait_all(self) -> None:
        self._queue.wait_all()


class DetectorClient:
    """One camera's view of the shared detector: submit frames, get results back in submission order."""

    def __init__(self, shared: SharedDetector) -> None:
        self.shared = shared
        self._cond = threading.Condition()
        self._jobs: dict[int, _Job] = {}
        self._next_submit = 0
        self._next_emit = 0
        self._error: BaseException | None = None

    @property
    def in_flight(self) -> int:
        return self._next_submit - self._next_emit

    def submit(self, frame: np.ndarray, userdata: Any, regions: Sequence[Region] | None = None,
               floor: float | None = None) -> None:
        height, width = frame.shape[:2]
        regions = list(regions) if regions else [(0, 0, width, height)]
        job = _Job(regions, userdata)
        with self._cond:
            seq = self._next_submit
            self._next_submit += 1
            self._jobs[seq] = job
        for index, region in enumerate(regions):
            job.inputs.append(self.shared.detector.preprocess(frame, region))
            self.shared._start(job.inputs[-1], (self, seq, index, floor))

    def region_of(self, seq: int, index: int) -> Region:
        with self._cond:
            return self._jobs[seq].regions[index]

    def done(self, seq: int, index: int, dets: list[Detection]) -> None:
        with self._cond:
            self._jobs[seq].parts[index] = dets
            self._cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            self._error = exc
            self._cond.notify_all()

    def _head_ready(self) -> bool:
        job = self._jobs.get(self._next_emit)
        return job is not None and len(job.parts) == len(job.regions)

    def ready(self) -> Iterator[tuple[Any, list[Detection]]]:
        """Frames whose every region is done, in submission order; does not block."""
        while True:
            with self._cond:
                if self._error is not None:
                    raise self._error
                if not self._head_ready():
                    return
                job = self._jobs.pop(self._next_emit)
                self._next_emit += 1
            yield job.userdata, self.shared.detector.merge([job.parts[i] for i in range(len(job.regions))])

    def wait_head(self, timeout: float | None = None) -> bool:
        """Block until the oldest submitted frame is done (or nothing is in flight)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._error is not None or self._next_emit == self._next_submit or self._head_ready(), timeout
            )

    def wait_all(self, timeout: float | None = None) -> bool:
        """Block until every frame this client submitted is done."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._error is not None
                or all(len(j.parts) == len(j.regions) for j in self._jobs.values()),
                timeout,
            )
