"""One entry point for the verifier: a person detector for a device, OpenVINO on CPU or torch on CUDA.

Both returned objects answer detect(frame, regions, floor), detect_tiled(frame, grid, floor), ref and calls;
TorchPersonDetector adds detect_batch(frames, regions_per_frame, floor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.prepare import find_prepared
from models.torch_export import TORCH_MANIFEST_NAME


def torch_artifacts(model_id: str, precision: str = "FP32", root: Path | None = None) -> Path:
    """The torch export of a prepared model: reused when current, made on demand (needs OpenVINO) when not."""
    model_dir = find_prepared(model_id, precision, root)
    try:
        from models.torch_export import export_for_torch

        return export_for_torch(model_dir)
    except ImportError:  # no OpenVINO here (a GPU box): a copied export is all we can use
        if (model_dir / TORCH_MANIFEST_NAME).exists():
            return model_dir
        raise


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def make_detector(model_id: str, device: str = "auto", precision: str = "FP32", root: Path | None = None,
                  inference_precision: str = "f32", **kwargs: Any) -> Any:
    """device: "auto" (CUDA when torch sees one, else CPU), "CPU" (OpenVINO) or "cuda"/"cuda:N" (torch).

    `precision` names the prepared IR (FP32 or INT8 for OpenVINO; the torch path takes the FP32 IR).
    `inference_precision` is the arithmetic: "f32" (default, the same scores on any host), "bf16" (OpenVINO
    only) or "f16" (OpenVINO, or fp16 autocast on CUDA). Other kwargs go to the detector.
    """
    wanted = device.lower()
    if wanted == "auto":
        wanted = "cuda" if _cuda_available() else "cpu"
    if wanted == "cpu":
        from models.detector import PersonDetector

        return PersonDetector(find_prepared(model_id, precision, root), device="CPU",
                              precision=inference_precision, **kwargs)  # type: ignore[arg-type]
    if wanted.startswith("cuda"):
        from models.torch_backend import TorchPersonDetector

        if precision != "FP32":
            raise ValueError("the torch backend is exported from the FP32 IR")
        torch_precision = {"f32": "FP32", "f16": "FP16"}.get(inference_precision)
        if torch_precision is None:
            raise ValueError(f"inference precision {inference_precision!r} on CUDA: f32 or f16")
        return TorchPersonDetector(torch_artifacts(model_id, precision, root), device=wanted,
                                   precision=torch_precision, **kwargs)
    raise ValueError(f"device {device!r}: auto, CPU or cuda")
