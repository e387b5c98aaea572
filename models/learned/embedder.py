"""Backbone embeddings of hypothesis crops: the features the learned head is trained on.

The network is the catalog's SSDLite-MobileNetV2 person detector (`ssdlite-person`): a MobileNetV2 backbone
fine-tuned to find people. Under leave-clips-out cross-validation on the DEV set its features put night-
infrared deer and a walking elephant further from small, far people than the COCO model's backbone did
(crop-level medians in docs/retraining.md). We cut the prepared IR after the backbone's last ReLU6 with 1280
channels (MobileNetV2's `Conv_1`, 10x10 at 300 px input) and average-pool it: one 1280-d vector per crop.
Nothing is downloaded: the graph is the prepared model, verified by its manifest's sha256, and compiled
pinned to f32 like every detector, so the same crop gives the same embedding on every host.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.checksums import sha256_file
from models.detector import compile_config
from models.manifest import load_manifest

log = logging.getLogger(__name__)

BACKBONE_CHANNELS = 1280
EMBEDDER_MODEL = "ssdlite-person"


def backbone_output(model: Any) -> Any:
    """The first ReLU6 (Clamp) whose output has BACKBONE_CHANNELS channels: the backbone's last layer."""
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Clamp":
            continue
        shape = op.output(0).get_partial_shape()
        if shape.rank.is_static and shape.rank.get_length() == 4 and shape[1].is_static \
                and shape[1].get_length() == BACKBONE_CHANNELS:
            return op.output(0)
    raise ValueError(f"no {BACKBONE_CHANNELS}-channel ReLU6 in the graph: not an SSD-MobileNetV2 IR")


class CropEmbedder:
    """crops (BGR, any square size) -> (n, 1280) float32 embeddings."""

    def __init__(self, model_dir: Path | None = None, threads: int | None = None,
                 model_id: str = EMBEDDER_MODEL) -> None:
        import openvino as ov

        if model_dir is None:
            from models.prepare import find_prepared

            model_dir = find_prepared(model_id, "FP32")
        self.model_dir = Path(model_dir)
        manifest = load_manifest(self.model_dir)
        xml, weights = self.model_dir / manifest.ir_xml, self.model_dir / manifest.ir_bin
        if sha256_file(weights) != manifest.ir_bin_sha256:
            raise ValueError(f"{weights}: sha256 differs from its manifest; prepare the model again")
        core = ov.Core()
        full = core.read_model(str(xml))
        backbone = ov.Model([backbone_output(full)], full.get_parameters(), "vigia-crop-embedder")
        self._compiled = core.compile_model(backbone, "CPU", compile_config("CPU", "throughput", "f32", threads))
        self._queue = ov.AsyncInferQueue(self._compiled, int(self._compiled.get_property(
            "OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.input_w, self.input_h = manifest.input_size
        self.dim = BACKBONE_CHANNELS
        # Identifies the feature space: a head trained on one embedder only makes sense with the same one.
        self.identity = hashlib.sha256(
            f"{manifest.model_id}@{manifest.version}:{manifest.ir_bin_sha256}:gap-{BACKBONE_CHANNELS}:f32".encode()
        ).hexdigest()[:16]
        self.model_label = f"{manifest.model_id}@{manifest.version}"

    def _input(self, crop: np.ndarray) -> np.ndarray:
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"expected a uint8 BGR crop, got {crop.dtype} {crop.shape}")
        resized = cv2.resize(crop, (self.input_w, self.input_h), interpolation=cv2.INTER_LINEAR)
        return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)[None]

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(crops), self.dim), dtype=np.float32)
        if not crops:
            return out

        def done(request: Any, index: int) -> None:
            out[index] = request.get_output_tensor(0).data.mean(axis=(2, 3))[0]

        self._queue.set_callback(done)
        for index, crop in enumerate(crops):
            self._queue.start_async({0: self._input(crop)}, index)
        self._queue.wait_all()
        return out
