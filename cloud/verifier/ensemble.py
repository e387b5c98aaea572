"""Runs every model of the ensemble at every scale of every examined frame and returns raw detections.

All (frame, scale) jobs of one model go through its asynchronous pipeline at once, so a multi-frame
segment keeps the CPU's inference requests busy instead of waiting on each tile in turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cloud.verifier.decision import FULL_SCALE, ModelDetection, scale_name
from models.detector import PersonDetector, Region, tile_regions


def scales_for(
    width: int, height: int, grids: Sequence[int], include_full: bool = True
) -> list[tuple[str, list[Region]]]:
    """The full frame (unless excluded) plus each tile grid, as (scale name, regions)."""
    out: list[tuple[str, list[Region]]] = [(FULL_SCALE, [(0, 0, width, height)])] if include_full else []
    out.extend((scale_name(g), tile_regions(width, height, g)) for g in grids)
    return out


def run_ensemble(
    detectors: Mapping[str, PersonDetector], frames: Sequence[np.ndarray], grids: Sequence[int], floor: float,
    include_full: bool = True,
) -> list[list[ModelDetection]]:
    """Detections per frame (same order as `frames`), of every model at every scale."""
    per_frame: list[list[ModelDetection]] = [[] for _ in frames]
    for model_id, detector in detectors.items():
        if hasattr(detector, "detect_batch"):  # the GPU path: every frame of one scale in one forward pass
            _run_batched(model_id, detector, frames, grids, floor, include_full, per_frame)
            continue
        pipeline = detector.pipeline()
        for index, frame in enumerate(frames):
            height, width = frame.shape[:2]
            for scale, regions in scales_for(width, height, grids, include_full):
                # Tiles of one scale are merged by the detector's NMS; scales stay apart so that the
                # decision can ask at how many scales an object holds.
                pipeline.submit(frame, (index, scale), regions=regions, floor=floor)
        for (index, scale), dets in pipeline.drain():
            per_frame[index].extend(ModelDetection(model_id, scale, d.as_xyxy(), d.score) for d in dets)
    return per_frame


def _run_batched(model_id: str, detector, frames: Sequence[np.ndarray], grids: Sequence[int], floor: float,
                 include_full: bool, per_frame: list[list[ModelDetection]]) -> None:
    plans = [scales_for(f.shape[1], f.shape[0], grids, include_full) for f in frames]
    for position in range(len(plans[0]) if plans else 0):
        scale = plans[0][position][0]
        results = detector.detect_batch(list(frames), [plan[position][1] for plan in plans], floor=floor)
        for index, dets in enumerate(results):
            per_frame[index].extend(ModelDetection(model_id, scale, d.as_xyxy(), d.score) for d in dets)
