"""PyTorch person detector (GPU verifier path) with the interface of the OpenVINO PersonDetector.

Same prepared model (exported once by models.torch_export), same pre/post-processing semantics: crop, resize to
the network's input (stretched for the SSDs; letterboxed on the host for NanoDet), person scores ≥ floor, at
most `max_candidates` per crop, boxes clipped to the crop, NMS per crop then across a frame's crops. What
differs is throughput: `detect_batch` sends every crop of many frames through one forward pass (channels-last,
fp16 autocast on CUDA) and keeps thresholding, box scaling and NMS on the device, with a single device→host
copy per batch (NanoDet's graph decodes boxes of batch 1: its crops go through the network one at a time).
Imports neither OpenVINO nor anything that needs it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models.catalog import get_spec
from models.detector import Detection, Region, letterbox_span, network_input, nms, tile_regions
from models.torch_export import TORCH_MANIFEST_NAME
from models.torch_graph import load_graph

try:  # optional: batched NMS and one-kernel crop+resize; the numpy/cv2 paths below stand in without it
    from torchvision.ops import batched_nms, roi_align
except Exception:  # ImportError, or a torchvision built against another torch
    batched_nms = roi_align = None

Resize = Literal["auto", "cpu", "gpu"]


def pick_device(device: str = "auto") -> torch.device:
    if device in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device.lower())


class TorchPersonDetector:
    """A prepared person model run by torch on `device` ("auto": CUDA when present, else CPU).

    precision "FP16" runs the network under fp16 autocast (CUDA only); "FP32" in full precision. Artifacts
    exported with float16 weights always report "FP16". `resize="gpu"` crops and resizes on the device
    (bilinear, half-pixel centres like cv2.INTER_LINEAR, without its 8-bit fixed-point rounding); "cpu" uses
    cv2 exactly as PersonDetector does.
    """

    def __init__(
        self,
        artifacts_dir: Path,
        device: str = "auto",
        precision: Literal["auto", "FP32", "FP16"] = "auto",
        score_floor: float = 0.05,
        nms_iou: float = 0.5,
        max_candidates: int = 200,
        resize: Resize = "auto",
        channels_last: bool = True,
    ) -> None:
        self.artifacts_dir = Path(artifacts_dir)
        self.device = pick_device(device)
        cuda = self.device.type == "cuda"
        self.graph, self.meta = load_graph(self.artifacts_dir)
        self.graph.eval().prepare(self.device, channels_last)
        self.autocast = (precision == "FP16" or (precision == "auto" and cuda)) and cuda
        self.precision = "FP16" if self.autocast or self.meta["weights_dtype"] == "float16" else "FP32"
        self.inference_precision = "f16" if self.precision == "FP16" else "f32"
        if cuda and self.precision == "FP32":
            # cuDNN runs fp32 convolutions in TF32 by default on Ampere and later (10-bit mantissa): "FP32" would
            # then score like neither OpenVINO f32 nor fp16. Process-wide, which suits a verifier process.
            torch.backends.cudnn.allow_tf32 = False
        self.score_floor = score_floor
        self.nms_iou = nms_iou
        self.max_candidates = max_candidates
        spec = get_spec(self.meta["model_id"])
        # Letterboxed crops (NanoDet) are made on the host, exactly as PersonDetector makes them.
        self.letterbox = spec.resize == "letterbox"
        self.per_crop = not spec.batch_free
        self.resize = ("gpu" if cuda and not self.letterbox else "cpu") if resize == "auto" else resize
        if self.letterbox and self.resize == "gpu":
            raise ValueError(f"{self.meta['model_id']}: letterboxed crops are made on the host (resize='cpu')")
        self.input_w, self.input_h = self.meta["input_size"]
        self.model_id: str = self.meta["model_id"]
        self.version: str = self.meta["version"]
        self.calls = 0  # network inferences (crops), as PersonDetector counts them

    @classmethod
    def from_artifacts(cls, artifacts_dir: Path, **kwargs: Any) -> TorchPersonDetector:
        if not (Path(artifacts_dir) / TORCH_MANIFEST_NAME).exists():
            raise FileNotFoundError(f"no torch export in {artifacts_dir}: run models.torch_export.export_for_torch")
        return cls(artifacts_dir, **kwargs)

    @property
    def ref(self) -> Any:
        from contracts import ModelRef  # lazy: the network itself needs no pydantic

        # `precision` names the IR the export came from (FP32) or fp16 weights; `inference_precision` how it ran.
        return ModelRef(model_id=self.model_id, version=self.version, precision=self.precision,
                        ir_sha256=self.meta["source_ir_bin_sha256"], inference_precision=self.inference_precision)

    # -- network ----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        """[N,300,300,3] RGB (uint8 or float 0..255) on self.device → boxes [N,A,4] (ymin,xmin,ymax,xmax,
        normalized), person scores [N,A], both float32."""
        n = batch.shape[0]
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.autocast):
            if self.per_crop:  # the graph folds batch 1 into its box decoding: one crop at a time
                outs = [self.graph(batch[i:i + 1]) for i in range(n)]
                out = {key: torch.stack([o[key] for o in outs]) for key in ("boxes", "person_scores")}
            else:
                out = self.graph(batch)
        return out["boxes"].reshape(n, -1, 4).float(), out["person_scores"].reshape(n, -1).float()

    # -- pre-processing ---------------------------------------------------------------------------------
    def _crops_cpu(self, frames: Sequence[np.ndarray], regions: list[list[Region]]) -> Tensor:
        crops = [network_input(f[y:y + h, x:x + w], self.input_w, self.input_h, self.letterbox)
                 for f, rs in zip(frames, regions, strict=True) for x, y, w, h in rs]
        host = torch.from_numpy(np.stack(crops))
        if self.device.type == "cuda":
            host = host.pin_memory()
        return host.to(self.device, non_blocking=True)

    def _crops_gpu(self, frames: Sequence[np.ndarray], regions: list[list[Region]]) -> Tensor:
        out_hw = (self.input_h, self.input_w)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            groups.setdefault(frame.shape, []).append(i)
        offsets = np.cumsum([0] + [len(r) for r in regions])
        result = torch.empty((int(offsets[-1]), 3, *out_hw), device=self.device)
        for members in groups.values():
            host = torch.from_numpy(np.stack([frames[i] for i in members]))
            if self.device.type == "cuda":
                host = host.pin_memory()
            # BGR HWC uint8 → RGB CHW float on the device
            images = host.to(self.device, non_blocking=True).permute(0, 3, 1, 2).flip(1).float()
            rows = [(j, offsets[i] + k, r) for j, i in enumerate(members) for k, r in enumerate(regions[i])]
            if roi_align is not None:
                boxes = torch.tensor([[j, x, y, x + w, y + h] for j, _, (x, y, w, h) in rows],
                                     dtype=torch.float32).to(self.device, non_blocking=True)
                # aligned=True + one sample per output pixel = bilinear with half-pixel centres
                crops = roi_align(images, boxes, out_hw, 1.0, 1, True)
                result[torch.tensor([t for _, t, _ in rows], device=self.device)] = crops
            else:
                for j, target, (x, y, w, h) in rows:
                    crop = images[j:j + 1, :, y:y + h, x:x + w]
                    result[target] = F.interpolate(crop, size=out_hw, mode="bilinear", align_corners=False)[0]
        # Round like the uint8 image the network was exported for; NHWC is the graph's input layout.
        return result.round_().clamp_(0, 255).permute(0, 2, 3, 1)

    # -- post-processing --------------------------------------------------------------------------------
    def _span(self, region: Region) -> tuple[float, float, float, float]:
        """What the network's normalised boxes span in frame pixels (as PersonDetector.postprocess maps them)."""
        return letterbox_span(region, self.input_w, self.input_h) if self.letterbox else region

    def _select(self, boxes: Tensor, scores: Tensor, region_t: Tensor, floor: float
                ) -> tuple[Tensor, Tensor, Tensor]:
        """Per crop: top-k ≥ floor, clip, drop empty boxes, scale to frame pixels → (xyxy [M,4], score, crop).
        region_t rows: the span (x, y, w, h) the boxes are relative to, then the region's own x2, y2."""
        k = min(self.max_candidates, scores.shape[1])
        top, idx = scores.topk(k, dim=1)
        picked = boxes.gather(1, idx.unsqueeze(-1).expand(-1, -1, 4)).clamp(0.0, 1.0)
        ymin, xmin, ymax, xmax = picked.unbind(-1)
        x0, y0, w, h, x2, y2 = (region_t[:, i:i + 1] for i in range(6))
        xs = torch.minimum(torch.stack((x0 + xmin * w, x0 + xmax * w)), x2)  # a letterboxed span exceeds it
        ys = torch.minimum(torch.stack((y0 + ymin * h, y0 + ymax * h)), y2)
        keep = (top >= floor) & (xs[1] > xs[0]) & (ys[1] > ys[0])
        xyxy = torch.stack((xs[0], ys[0], xs[1], ys[1]), dim=-1)
        crop = torch.arange(scores.shape[0], device=scores.device).unsqueeze(1).expand_as(top)
        return xyxy[keep], top[keep], crop[keep]

    def _nms_device(self, xyxy: Tensor, score: Tensor, crop: Tensor, frame_of_crop: Tensor) -> list[tuple]:
        keep = batched_nms(xyxy, score, crop, self.nms_iou)  # per crop
        xyxy, score, crop = xyxy[keep], score[keep], crop[keep]
        frame = frame_of_crop[crop]
        keep = batched_nms(xyxy, score, frame, self.nms_iou)  # across a frame's crops (idempotent for one)
        rows = torch.cat((xyxy[keep], score[keep, None], frame[keep, None].float()), dim=1)
        return rows.cpu().tolist()  # the one device→host copy of the batch

    # -- public interface -------------------------------------------------------------------------------
    def detect_batch(
        self,
        frames: Sequence[np.ndarray],
        regions_per_frame: Sequence[Sequence[Region] | None] | None = None,
        floor: float | None = None,
    ) -> list[list[Detection]]:
        """Detections for each frame (regions: None = the whole frame), all crops in one forward pass."""
        floor = self.score_floor if floor is None else floor
        if not frames:
            return []
        per_frame = list(regions_per_frame) if regions_per_frame is not None else [None] * len(frames)
        regions = [list(r) if r else [(0, 0, f.shape[1], f.shape[0])] for f, r in zip(frames, per_frame, strict=True)]
        batch = self._crops_gpu(frames, regions) if self.resize == "gpu" else self._crops_cpu(frames, regions)
        boxes, scores = self.forward(batch)
        self.calls += batch.shape[0]
        flat = [r for rs in regions for r in rs]
        region_t = torch.tensor([(*self._span(r), r[0] + r[2], r[1] + r[3]) for r in flat],
                                dtype=torch.float32).to(self.device, non_blocking=True)
        xyxy, score, crop = self._select(boxes, scores, region_t, floor)
        frame_of_crop = torch.tensor([i for i, rs in enumerate(regions) for _ in rs], device=self.device)
        out: list[list[Detection]] = [[] for _ in frames]
        if batched_nms is not None:
            for x1, y1, x2, y2, s, f in self._nms_device(xyxy, score, crop, frame_of_crop):
                out[int(f)].append(Detection(x1, y1, x2, y2, s))
            return out
        # Fallback without torchvision: our cv2 NMS, per crop then per frame, on the host.
        rows = torch.cat((xyxy, score[:, None], crop[:, None].float()), dim=1).cpu().tolist()
        per_crop: list[list[Detection]] = [[] for _ in flat]
        for x1, y1, x2, y2, s, c in rows:
            per_crop[int(c)].append(Detection(x1, y1, x2, y2, s))
        start = 0
        for i, rs in enumerate(regions):
            parts = [nms(per_crop[c], self.nms_iou) for c in range(start, start + len(rs))]
            flat_parts = [d for part in parts for d in part]
            out[i] = nms(flat_parts, self.nms_iou) if len(parts) > 1 else flat_parts
            start += len(rs)
        return out

    def detect(self, frame: np.ndarray, regions: Sequence[Region] | None = None,
               floor: float | None = None) -> list[Detection]:
        return self.detect_batch([frame], [regions], floor)[0]

    def detect_tiled(self, frame: np.ndarray, grid: int = 2, floor: float | None = None) -> list[Detection]:
        return self.detect(frame, tiled_regions(frame, grid), floor)


def tiled_regions(frame: np.ndarray, grid: int = 2) -> list[Region]:
    """Full frame + grid×grid overlapping tiles, as PersonDetector.detect_tiled looks at a frame."""
    height, width = frame.shape[:2]
    return [(0, 0, width, height), *tile_regions(width, height, grid)]


def describe(artifacts_dir: Path) -> dict[str, Any]:
    return json.loads((Path(artifacts_dir) / TORCH_MANIFEST_NAME).read_text())
