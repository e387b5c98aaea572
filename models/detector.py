"""OpenVINO runtime wrapper shared by gateway and cloud: BGR frame in, person boxes in frame pixels out.

Two modes: `latency` (one request, sync) and `throughput` (an AsyncInferQueue with the device's optimal
number of requests in flight, results handed back in submission order). Optional tiling looks at
overlapping crops so that small, far people reach the network at a size it can see.

Numerics are pinned (see `compile_config`): left alone, OpenVINO runs an FP32 IR in bfloat16 on CPUs with
AVX512_BF16/AMX, which moves scores by up to 0.02 and stops a threshold tuned on one gateway meaning the same
on another. f32 is the default everywhere; bf16/f16 only when asked for, and the precision the compiled model
really runs in is what `ref` reports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from contracts import ModelRef
from contracts.candidate import InferencePrecision
from models.manifest import ModelManifest, load_manifest

log = logging.getLogger(__name__)

Region = tuple[int, int, int, int]  # x, y, width, height in frame pixels
INFERENCE_PRECISIONS: tuple[InferencePrecision, ...] = ("f32", "bf16", "f16")


def compile_config(
    device: str = "CPU",
    mode: Literal["latency", "throughput"] = "latency",
    precision: InferencePrecision = "f32",
    threads: int | None = None,
) -> dict[str, Any]:
    """compile_model properties that make the scores a function of the input alone, not of the host's CPU.

    INFERENCE_PRECISION_HINT: without it the CPU plugin picks bf16 (or f16) wherever the CPU has it. For an INT8
    IR it governs the layers left unquantised, so f32 there too. EXECUTION_MODE_HINT=ACCURACY for f32 forbids
    the plugin any other lossy shortcut it would take in PERFORMANCE mode. CPU_DENORMALS_OPTIMIZATION=False:
    unset, the plugin inherits whatever flush-to-zero state the calling thread has (another library may have set
    it); False makes OpenVINO keep IEEE denormals on every host.
    """
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"inference precision {precision!r}: one of {', '.join(INFERENCE_PRECISIONS)}")
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": "THROUGHPUT" if mode == "throughput" else "LATENCY",
        "INFERENCE_PRECISION_HINT": precision,
        "EXECUTION_MODE_HINT": "ACCURACY" if precision == "f32" else "PERFORMANCE",
    }
    if device.upper().startswith("CPU"):
        config["CPU_DENORMALS_OPTIMIZATION"] = False
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def compiled_precision(compiled: Any, requested: InferencePrecision) -> InferencePrecision:
    """The precision a compiled model reports it runs in (a CPU without bf16 runs an asked-for bf16 in f32)."""
    try:
        name = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    except Exception:  # a device that does not report the hint: it was given `requested`
        return requested
    return name if name in INFERENCE_PRECISIONS else requested


@dataclass(frozen=True, slots=True)
class Detection:
    x1: float
    y1: float
    x2: float
    y2: float
    score: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def bottom_centre(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, self.y2)

    def as_xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


def tile_regions(width: int, height: int, grid: int = 2, overlap: float = 0.25) -> list[Region]:
    """Overlapping grid×grid tiles covering the frame (so a person cut by one tile is whole in another)."""
    tile_w = round(width / (grid - (grid - 1) * overlap))
    tile_h = round(height / (grid - (grid - 1) * overlap))
    regions = []
    for row in range(grid):
        for col in range(grid):
            x = min(round(col * tile_w * (1 - overlap)), width - tile_w)
            y = min(round(row * tile_h * (1 - overlap)), height - tile_h)
            regions.append((x, y, tile_w, tile_h))
    return regions


def nms(detections: Sequence[Detection], iou: float) -> list[Detection]:
    if len(detections) <= 1:
        return list(detections)
    xyxy = np.array([d.as_xyxy() for d in detections], np.float64)
    return nms_arrays(xyxy, np.array([d.score for d in detections], np.float64), iou)


def nms_arrays(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> list[Detection]:
    """`nms` of boxes given as arrays (N, 4 as x1 y1 x2 y2; N scores), best first: only the boxes kept
    become Detection objects (a crowded frame has ~150 boxes above the score floor, ~50 survive)."""
    if len(scores) <= 1:
        return [Detection(*box, score) for box, score in zip(xyxy.tolist(), scores.tolist(), strict=True)]
    x1, y1, x2, y2 = xyxy.T
    boxes = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).tolist()
    kept = np.asarray(cv2.dnn.NMSBoxes(boxes, scores.tolist(), 0.0, iou)).ravel()
    return sorted((Detection(*xyxy[i].tolist(), float(scores[i])) for i in kept), key=lambda d: -d.score)


def letterboxed(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The image resized into width x height keeping its aspect ratio, at the top left, zero-padded; as the
    network's NHWC RGB input."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)[None]


def network_input(image: np.ndarray, width: int, height: int, letterbox: bool) -> np.ndarray:
    """A region as the network's HWC RGB uint8 input: stretched to width x height, or letterboxed. The one
    pre-processing of both back ends (OpenVINO here, torch in models.torch_backend)."""
    if letterbox:
        return letterboxed(image, width, height)[0]
    return cv2.cvtColor(cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)


def letterbox_span(region: Region, width: int, height: int) -> tuple[float, float, float, float]:
    """What a letterboxed network's normalised boxes span in frame pixels: the padded square (x, y, w, h) the
    region sits in at the top left; boxes mapped through it are then clipped to the region."""
    x, y, w, h = region
    scale = min(width / w, height / h)
    return x, y, width / scale, height / scale


def decode_detections(boxes: np.ndarray, scores: np.ndarray, region: Region | tuple[float, float, float, float],
                      floor: float, max_candidates: int, nms_iou: float,
                      bounds: tuple[float, float, float, float] | None = None) -> list[Detection]:
    """The network's outputs for one region (boxes [A, 4] as normalised ymin xmin ymax xmax, person scores [A])
    as detections in frame pixels: scores at or above `floor`, at most `max_candidates`, after NMS, best first.
    `bounds` (x1 y1 x2 y2) clips the boxes first: a letterboxed input covers more than the region."""
    keep = np.flatnonzero(scores >= floor)
    if keep.size > max_candidates:
        keep = keep[np.argsort(-scores[keep])[:max_candidates]]
    # One array pass, not a loop over boxes. vtest.avi, per region: at the verifier's floor 0.1 (~34 boxes)
    # 0.50 -> 0.24 ms of CPU, at the lowest floor 0.05 (~150 boxes) 2.0 -> 0.6 ms; at the gateway's default
    # 0.3 (~6 boxes) both take 0.13 ms.
    ymin, xmin, ymax, xmax = np.clip(boxes[keep], 0.0, 1.0).astype(np.float64).T
    valid = (xmax > xmin) & (ymax > ymin)
    x0, y0, w, h = region
    xyxy = np.stack([x0 + xmin * w, y0 + ymin * h, x0 + xmax * w, y0 + ymax * h], axis=1)
    if bounds is not None:
        np.clip(xyxy[:, 0::2], bounds[0], bounds[2], out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], bounds[1], bounds[3], out=xyxy[:, 1::2])
        valid &= (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    return nms_arrays(xyxy[valid], scores[keep][valid].astype(np.float64), nms_iou)


@dataclass
class _FrameJob:
    regions: list[Region]
    userdata: Any
    parts: dict[int, list[Detection]] = field(default_factory=dict)


class PersonDetector:
    """A prepared person model (see models.prepare) compiled for one device and mode.

    precision: floating-point precision of inference, "f32" (default: the same scores on every host), "bf16" or
    "f16" (faster on CPUs with AMX/AVX512_BF16, scores move by ~1e-2). `inference_precision` is what the compiled
    model reports, and goes into `ref`.
    """

    def __init__(
        self,
        model_dir: Path,
        device: str = "CPU",
        mode: Literal["latency", "throughput"] = "latency",
        score_floor: float = 0.05,
        nms_iou: float = 0.5,
        max_candidates: int = 200,
        threads: int | None = None,
        precision: InferencePrecision = "f32",
    ) -> None:
        import openvino as ov

        self.model_dir = Path(model_dir)
        self.manifest: ModelManifest = load_manifest(self.model_dir)
        self.score_floor = score_floor
        self.nms_iou = nms_iou
        self.max_candidates = max_candidates
        self.mode = mode
        core = ov.Core()
        config = compile_config(device, mode, precision, threads)
        self._compiled = core.compile_model(str(self.model_dir / self.manifest.ir_xml), device, config)
        self.requested_precision: InferencePrecision = precision
        self.inference_precision: InferencePrecision = compiled_precision(self._compiled, precision)
        if self.inference_precision != precision or precision != self.manifest.inference_precision:
            log.warning("inference precision differs from what was asked or validated", extra={
                "model_id": self.manifest.model_id, "requested": precision, "running": self.inference_precision,
                "validated": self.manifest.inference_precision, "device": device})
        self._request = self._compiled.create_infer_request()
        self.input_w, self.input_h = self.manifest.input_size
        self.letterbox = self.manifest.resize == "letterbox"
        self.optimal_requests = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.calls = 0  # network inferences, for benchmarks and the motion-gate report

    @property
    def ref(self) -> ModelRef:
        return self.manifest.ref(self.inference_precision)

    def compiled_property(self, name: str) -> Any:
        """A property as the compiled model reports it (e.g. INFERENCE_PRECISION_HINT, EXECUTION_MODE_HINT)."""
        return self._compiled.get_property(name)

    # -- pre/post-processing ------------------------------------------------------------------------
    def preprocess(self, frame: np.ndarray, region: Region | None = None) -> np.ndarray:
        if region is not None:
            x, y, w, h = region
            frame = frame[y : y + h, x : x + w]
        return network_input(frame, self.input_w, self.input_h, self.letterbox)[None]

    def postprocess(
        self, boxes: np.ndarray, scores: np.ndarray, region: Region, floor: float | None = None
    ) -> list[Detection]:
        floor = self.score_floor if floor is None else floor
        if self.letterbox:  # the input spans more than the region: map through the padded square, then clip
            x, y, w, h = region
            return decode_detections(boxes, scores, letterbox_span(region, self.input_w, self.input_h), floor,
                                     self.max_candidates, self.nms_iou, bounds=(x, y, x + w, y + h))
        return decode_detections(boxes, scores, region, floor, self.max_candidates, self.nms_iou)

    def merge(self, parts: Sequence[list[Detection]]) -> list[Detection]:
        flat = [d for part in parts for d in part]
        return nms(flat, self.nms_iou) if len(parts) > 1 else flat

    # -- synchronous ------------------------------------------------------------------------------
    def infer_raw(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's own outputs for one preprocessed input (see preprocess): boxes [A,4], person scores [A]."""
        self._request.infer({0: batch})
        self.calls += 1
        return self._request.get_output_tensor(0).data.copy(), self._request.get_output_tensor(1).data.copy()

    def infer_region(self, frame: np.ndarray, region: Region, floor: float | None = None) -> list[Detection]:
        boxes, scores = self.infer_raw(self.preprocess(frame, region))
        return self.postprocess(boxes, scores, region, floor)

    def detect(
        self, frame: np.ndarray, regions: Sequence[Region] | None = None, floor: float | None = None
    ) -> list[Detection]:
        """Run the full frame (default) or the given regions and merge."""
        height, width = frame.shape[:2]
        regions = list(regions) if regions else [(0, 0, width, height)]
        return self.merge([self.infer_region(frame, r, floor) for r in regions])

    def detect_tiled(self, frame: np.ndarray, grid: int = 2, floor: float | None = None) -> list[Detection]:
        height, width = frame.shape[:2]
        return self.detect(frame, [(0, 0, width, height), *tile_regions(width, height, grid)], floor)

    # -- asynchronous -----------------------------------------------------------------------------
    def pipeline(self, jobs: int | None = None) -> AsyncPipeline:
        return AsyncPipeline(self, jobs or self.optimal_requests)


class AsyncPipeline:
    """Keeps several inferences in flight and returns frames' results in the order they were submitted."""

    def __init__(self, detector: PersonDetector, jobs: int) -> None:
        import openvino as ov

        self.detector = detector
        self.jobs = max(1, jobs)
        self._queue = ov.AsyncInferQueue(detector._compiled, self.jobs)
        self._queue.set_callback(self._on_done)
        self._lock = threading.Lock()
        self._pending: dict[int, _FrameJob] = {}
        self._next_submit = 0
        self._next_emit = 0
        self._error: BaseException | None = None

    def _on_done(self, request: Any, userdata: tuple[int, int, float | None]) -> None:
        seq, index, floor = userdata
        try:
            with self._lock:
                job = self._pending[seq]
            dets = self.detector.postprocess(
                request.get_output_tensor(0).data.copy(), request.get_output_tensor(1).data.copy(),
                job.regions[index], floor,
            )
            with self._lock:
                job.parts[index] = dets
        except BaseException as exc:  # surfaced on the caller's thread
            self._error = exc

    def submit(self, frame: np.ndarray, userdata: Any, regions: Sequence[Region] | None = None,
               floor: float | None = None) -> None:
        height, width = frame.shape[:2]
        regions = list(regions) if regions else [(0, 0, width, height)]
        seq = self._next_submit
        self._next_submit += 1
        with self._lock:
            self._pending[seq] = _FrameJob(regions=regions, userdata=userdata)
        for index, region in enumerate(regions):
            self._queue.start_async({0: self.detector.preprocess(frame, region)}, (seq, index, floor))
            self.detector.calls += 1

    def ready(self) -> Iterator[tuple[Any, list[Detection]]]:
        """Frames whose every region is done, in submission order; does not block."""
        if self._error:
            raise self._error
        while True:
            with self._lock:
                job = self._pending.get(self._next_emit)
                if job is None or len(job.parts) < len(job.regions):
                    return
                del self._pending[self._next_emit]
                self._next_emit += 1
            yield job.userdata, self.detector.merge([job.parts[i] for i in range(len(job.regions))])

    def drain(self) -> Iterator[tuple[Any, list[Detection]]]:
        """Wait for everything in flight, then yield the rest in order."""
        self._queue.wait_all()
        yield from self.ready()

    def drain_wait(self) -> None:
        """Block until every inference in flight has finished (results then come from ready())."""
        self._queue.wait_all()

    @property
    def in_flight(self) -> int:
        return self._next_submit - self._next_emit
