"""Rebuilds an exported OpenVINO op list (models.torch_export) as a torch nn.Module, batch size free.

Needs numpy + torch only (the GPU machines have no OpenVINO). The IR is fixed at batch 1, but the TF-OD graph
itself was written for any batch: its anchors are tiled by a batch read at run time (ShapeOf), and the export
dropped the preprocessor Loop. What is left that assumes batch 1 is handled here, at run time:
- Squeeze drops only the named axes that are 1 (the prepare-time `Squeeze[0,2]` of the scores meets batch N);
- a Reshape whose target starts with a hard-coded 1 that cannot hold the data takes -1 there instead.
Shape values (ShapeOf and what is computed from it) stay small int64 CPU tensors so that they never force a
GPU sync. Spatial size is fixed at the IR's input (300×300, 416×416): the convolutions keep the pads OpenVINO
resolved for it. NanoDet's contract IR folds its batch of 1 into the box decoding; TorchPersonDetector runs its
crops one at a time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.checksums import sha256_file as _sha256
from models.torch_export import CONSTS_NAME, GRAPH_NAME, TORCH_MANIFEST_NAME  # numpy-only module

Value = Any  # Tensor, or a tuple of Tensors for multi-output ops


def _ints(value: Tensor) -> list[int]:
    return [int(v) for v in value.reshape(-1).tolist()]


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _on(index: Tensor, like: Tensor) -> Tensor:
    return index if index.device == like.device else index.to(like.device, non_blocking=True)


class UnsupportedOp(NotImplementedError):
    pass


class TorchGraph(nn.Module):
    """Runs the exported graph. forward(x) → {output name: tensor}; x is [N,H,W,3] (uint8 or float)."""

    def __init__(self, graph: dict[str, Any], consts: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.output_names: list[str] = list(graph["outputs"])
        self.input_shape: list[int] = list(graph["inputs"][0]["shape"])
        self.channels_last = False
        ops = graph["ops"]
        users: dict[int, int] = {}
        for op in ops:
            for src, _ in op["inputs"]:
                users[src] = users.get(src, 0) + 1
        self._consts: dict[int, Tensor] = {}  # small integer constants, kept on the CPU
        self._steps: list[tuple[int, Callable[..., Value], list[tuple[int, int]]]] = []
        self._results: dict[str, tuple[int, int]] = {}
        self._alias: dict[int, tuple[int, int]] = {}  # Adds folded into the convolution before them
        conv_of: dict[int, dict[str, Any]] = {}
        kinds = {op["id"]: op["type"] for op in ops}
        for op in ops:
            oid, kind, attrs = op["id"], op["type"], op["attrs"]
            inputs = [self._resolve((s, p)) for s, p in op["inputs"]]
            if kind == "Constant":
                data = consts[op["const"]]
                if data.dtype.kind == "f":
                    self.register_buffer(f"c{oid}", torch.from_numpy(data.astype(np.float32)), persistent=False)
                else:
                    self._consts[oid] = torch.from_numpy(data.astype(np.int64))
                continue
            if kind == "Parameter":
                self._input_id = oid
                continue
            if kind == "Result":
                self._results[op["output_name"]] = inputs[0]
                continue
            if kind in ("Convolution", "GroupConvolution"):
                weight = self._buffer(inputs[1][0])
                if kind == "GroupConvolution":  # [G, O/G, I/G, kh, kw] → [O, I/G, kh, kw]
                    groups = weight.shape[0]
                    weight = weight.reshape(-1, *weight.shape[2:])
                else:
                    groups = 1
                self.register_buffer(f"w{oid}", weight.clone(), persistent=False)
                conv = {"attrs": attrs, "groups": groups, "bias": None}
                conv_of[oid] = conv
                self._steps.append((oid, self._conv_fn(oid, conv), [inputs[0]]))
                continue
            if kind == "Add" and self._foldable_bias(inputs, conv_of, users, kinds):
                # Why: one kernel fewer per convolution, and under fp16 autocast the bias is cast with the
                # weights instead of promoting the activations back to fp32.
                conv = conv_of[inputs[0][0]]
                bias = self._buffer(inputs[1][0]).reshape(-1)
                self.register_buffer(f"b{inputs[0][0]}", bias.clone(), persistent=False)
                conv["bias"] = f"b{inputs[0][0]}"
                self._alias[oid] = inputs[0]
                continue
            self._steps.append((oid, self._op_fn(kind, attrs, op["name"]), inputs))

    # -- building -------------------------------------------------------------------------------------
    def _resolve(self, ref: tuple[int, int]) -> tuple[int, int]:
        while ref[0] in self._alias:
            ref = self._alias[ref[0]]
        return ref

    def _buffer(self, oid: int) -> Tensor:
        return self._buffers[f"c{oid}"]

    def _foldable_bias(self, inputs: list[tuple[int, int]], conv_of: dict[int, dict[str, Any]],
                       users: dict[int, int], kinds: dict[int, str]) -> bool:
        (src, _), (other, _) = inputs
        if src not in conv_of or conv_of[src]["bias"] is not None or users.get(src) != 1:
            return False
        if kinds.get(other) != "Constant" or f"c{other}" not in self._buffers:
            return False
        shape = tuple(self._buffer(other).shape)
        channels = self._buffers[f"w{src}"].shape[0]
        return shape in ((1, channels, 1, 1), (channels, 1, 1))

    def _conv_fn(self, oid: int, conv: dict[str, Any]) -> Callable[..., Value]:
        attrs = conv["attrs"]
        stride = tuple(attrs["strides"])
        dilation = tuple(attrs["dilations"])
        begin, end = list(attrs["pads_begin"]), list(attrs["pads_end"])
        symmetric = begin == end
        pad = [p for b, e in zip(reversed(begin), reversed(end), strict=True) for p in (b, e)]
        groups, wname = conv["groups"], f"w{oid}"

        def run(x: Tensor) -> Tensor:
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            bias = self._buffers[conv["bias"]] if conv["bias"] else None
            if not symmetric:  # TF "SAME" with stride 2 pads only after: conv2d pads both sides alike
                x = F.pad(x, pad)
            return F.conv2d(x, self._buffers[wname], bias, stride, tuple(begin) if symmetric else 0,
                             dilation, groups)

        return run

    def _op_fn(self, kind: str, attrs: dict[str, Any], name: str) -> Callable[..., Value]:
        if kind == "Add":
            return torch.add
        if kind == "Subtract":
            return torch.sub
        if kind == "Multiply":
            return torch.mul
        if kind == "Sigmoid":
            return torch.sigmoid
        if kind == "Exp":
            return torch.exp
        if kind == "Clamp":
            lo, hi = float(attrs["min"]), float(attrs["max"])
            return lambda x: torch.clamp(x, lo, hi)
        if kind == "Convert":
            dtype = {"f32": torch.float32, "f16": torch.float16, "i32": torch.int32, "i64": torch.int64}
            target = dtype[attrs["destination_type"]]
            # Under autocast a float input stays in its dtype: the next convolution casts it anyway.
            return lambda x: x if (x.is_floating_point() and target.is_floating_point) else x.to(target)
        if kind == "ShapeOf":
            return lambda x: torch.tensor(list(x.shape), dtype=torch.int64)
        if kind == "Transpose":
            return lambda x, order: x.permute(*(_ints(order) or range(x.dim() - 1, -1, -1)))
        if kind == "Concat":
            axis = int(attrs["axis"])
            return lambda *xs: torch.cat(xs, dim=axis)
        if kind == "Squeeze":
            return _squeeze
        if kind == "Unsqueeze":
            return _unsqueeze
        if kind == "Reshape":
            special_zero = bool(attrs["special_zero"])
            return lambda x, shape: x.reshape(_reshape_target(x, _ints(shape), special_zero))
        if kind == "Gather":
            if int(attrs.get("batch_dims", 0)) != 0:
                raise UnsupportedOp(f"{name}: Gather with batch_dims")
            return _gather
        if kind == "Split":
            parts = int(attrs["num_splits"])
            return lambda x, axis: tuple(torch.tensor_split(x, parts, dim=_axis(_ints(axis)[0], x.dim())))
        if kind == "Divide":
            python_div = bool(attrs.get("m_pythondiv", True))
            return lambda a, b: torch.div(a, b) if a.is_floating_point() or b.is_floating_point() else \
                torch.div(a, b, rounding_mode="floor" if python_div else "trunc")
        if kind == "PRelu":
            return _prelu
        if kind == "Softmax":
            axis = int(attrs["axis"])
            return lambda x: torch.softmax(x, dim=axis)
        if kind == "MatMul":
            ta, tb = bool(attrs["transpose_a"]), bool(attrs["transpose_b"])
            return lambda a, b: torch.matmul(a.transpose(-1, -2) if ta else a, b.transpose(-1, -2) if tb else b)
        if kind == "VariadicSplit":
            return lambda x, axis, lengths: tuple(torch.split(
                x, _split_lengths(_ints(lengths), x.shape[_axis(_ints(axis)[0], x.dim())]),
                dim=_axis(_ints(axis)[0], x.dim())))
        if kind == "Pad":
            if attrs["pad_mode"] != "constant":
                raise UnsupportedOp(f"{name}: Pad mode {attrs['pad_mode']}")
            return _pad
        if kind == "MaxPool":
            return self._max_pool_fn(attrs, name)
        if kind == "Interpolate":
            return _interpolate_fn(attrs, name)
        if kind == "Tile":
            return lambda x, repeats: x.repeat(*_ints(repeats)) if len(_ints(repeats)) >= x.dim() else \
                x.repeat(*([1] * (x.dim() - len(_ints(repeats))) + _ints(repeats)))
        raise UnsupportedOp(f"op {kind} ({name}) has no torch implementation; add one in models/torch_graph.py")

    @staticmethod
    def _max_pool_fn(attrs: dict[str, Any], name: str) -> Callable[..., Value]:
        if attrs.get("auto_pad") not in ("valid", "explicit", "notset") or any(d != 1 for d in attrs["dilations"]):
            raise UnsupportedOp(f"{name}: MaxPool with auto_pad {attrs.get('auto_pad')} or dilation")
        kernel, stride = tuple(attrs["kernel"]), tuple(attrs["strides"])
        begin, end = list(attrs["pads_begin"]), list(attrs["pads_end"])
        pad = [p for b, e in zip(reversed(begin), reversed(end), strict=True) for p in (b, e)]
        ceil = attrs.get("rounding_type") == "ceil"

        def run(x: Tensor) -> tuple[Tensor]:
            if any(pad):
                x = F.pad(x, pad, value=float("-inf"))
            return (F.max_pool2d(x, kernel, stride, 0, 1, ceil),)  # port 1 (indices) is never read

        return run

    # -- running --------------------------------------------------------------------------------------
    def prepare(self, device: torch.device | str, channels_last: bool) -> TorchGraph:
        self.to(device)
        self.channels_last = channels_last and torch.device(device).type == "cuda"
        if self.channels_last:
            for name, buf in self._buffers.items():
                if name.startswith("w") and buf is not None and buf.dim() == 4:
                    self._buffers[name] = buf.contiguous(memory_format=torch.channels_last)
        return self

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        values: dict[int, Value] = {self._input_id: x}
        consts = self._consts
        buffers = self._buffers

        def get(ref: tuple[int, int]) -> Tensor:
            oid, port = ref
            if oid in values:
                value = values[oid]
                return value[port] if isinstance(value, tuple) else value
            return consts[oid] if oid in consts else buffers[f"c{oid}"]

        for oid, fn, inputs in self._steps:
            values[oid] = fn(*[get(r) for r in inputs])
        return {name: get(self._resolve(ref)) for name, ref in self._results.items()}


def _squeeze(x: Tensor, axes: Tensor | None = None) -> Tensor:
    if axes is None:
        return x.squeeze()
    dims = [_axis(a, x.dim()) for a in _ints(axes)]
    return x.squeeze(tuple(d for d in dims if x.shape[d] == 1))  # batch N keeps its batch axis


def _unsqueeze(x: Tensor, axes: Tensor) -> Tensor:
    rank = x.dim() + len(_ints(axes))
    for axis in sorted(_axis(a, rank) for a in _ints(axes)):
        x = x.unsqueeze(axis)
    return x


def _gather(x: Tensor, indices: Tensor, axis: Tensor) -> Tensor:
    dim = _axis(_ints(axis)[0], x.dim())
    size = x.shape[dim]
    idx = torch.where(indices < 0, indices + size, indices)
    if idx.dim() == 0:
        return x.select(dim, int(idx))
    picked = torch.index_select(x, dim, _on(idx.reshape(-1), x))
    return picked.reshape(*x.shape[:dim], *idx.shape, *x.shape[dim + 1:])


def _prelu(x: Tensor, slope: Tensor) -> Tensor:
    if slope.dim() == 1 and slope.numel() > 1 and x.dim() > 2:  # one slope per channel (axis 1)
        slope = slope.reshape(1, -1, *([1] * (x.dim() - 2)))
    return torch.where(x >= 0, x, x * slope.to(x.dtype))


def _split_lengths(lengths: list[int], size: int) -> list[int]:
    if -1 in lengths:
        lengths[lengths.index(-1)] = size - sum(n for n in lengths if n != -1)
    return lengths


def _pad(x: Tensor, begin: Tensor, end: Tensor, value: Tensor | None = None) -> Tensor:
    pad = [p for b, e in zip(reversed(_ints(begin)), reversed(_ints(end)), strict=True) for p in (b, e)]
    return F.pad(x, pad, value=float(value) if value is not None else 0.0)


def _interpolate_fn(attrs: dict[str, Any], name: str) -> Callable[..., Value]:
    """Bilinear with half-pixel centres over two axes (what TF's ResizeBilinear becomes); anything else is refused
    rather than approximated."""
    if attrs["mode"] not in ("linear", "linear_onnx") or attrs["coordinate_transformation_mode"] != "half_pixel" \
            or attrs.get("antialias") or any(attrs.get("pads_begin", [])) or any(attrs.get("pads_end", [])):
        raise UnsupportedOp(f"{name}: Interpolate {attrs['mode']}/{attrs['coordinate_transformation_mode']}")
    by_sizes = attrs["shape_calculation_mode"] == "sizes"

    def run(x: Tensor, target: Tensor, axes: Tensor | None = None) -> Tensor:
        dims = [_axis(a, x.dim()) for a in (_ints(axes) if axes is not None else range(x.dim()))]
        values = _ints(target) if by_sizes else [float(v) for v in target.reshape(-1).tolist()]
        moved = [(d, v) for d, v in zip(dims, values, strict=True)
                 if (v != x.shape[d] if by_sizes else v != 1.0)]
        if len(moved) != 2:
            raise UnsupportedOp(f"{name}: Interpolate over {len(moved)} axes")
        (d0, v0), (d1, v1) = moved
        rest = [d for d in range(x.dim()) if d not in (d0, d1)]
        y = x.permute(*rest, d0, d1)
        lead = y.shape[:-2]
        y = y.reshape(-1, 1, *y.shape[-2:])
        size = (v0, v1) if by_sizes else (round(y.shape[-2] * v0), round(y.shape[-1] * v1))
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False).reshape(*lead, *size)
        order = [*rest, d0, d1]
        return y.permute(*[order.index(d) for d in range(x.dim())])

    return run


def _reshape_target(x: Tensor, target: list[int], special_zero: bool) -> list[int]:
    shape = [x.shape[i] if (special_zero and t == 0) else t for i, t in enumerate(target)]
    known = math.prod(s for s in shape if s != -1)
    if -1 not in shape and known != x.numel() and shape and shape[0] == 1:
        shape[0] = -1  # a batch of 1 hard-coded in the IR: let the real batch fill it
    return shape



def load_graph(artifacts: Path, verify: bool = True) -> tuple[TorchGraph, dict[str, Any]]:
    """Load an export (see models.torch_export), checking its sha256 against its manifest."""
    artifacts = Path(artifacts)
    meta = json.loads((artifacts / TORCH_MANIFEST_NAME).read_text())
    if verify:
        for name, key in ((GRAPH_NAME, "graph_sha256"), (CONSTS_NAME, "consts_sha256")):
            if _sha256(artifacts / name) != meta[key]:
                raise ValueError(f"{artifacts / name}: sha256 does not match {TORCH_MANIFEST_NAME}")
    graph = json.loads((artifacts / GRAPH_NAME).read_text())
    with np.load(artifacts / CONSTS_NAME) as npz:
        consts = {key: npz[key] for key in npz.files}
    return TorchGraph(graph, consts), meta
