"""TensorFlow.js graph model (model.json + .bin weight shards) -> OpenVINO model, without TensorFlow.

Why: OpenVINO's TF frontend reads a frozen GraphDef (.pb) but not the TFJS format, and the usual route
(tensorflowjs_converter) pulls in TensorFlow. A TFJS graph model is a GraphDef in proto3 JSON with the
Const values moved into binary shards, so we put the weights back and write the GraphDef bytes ourselves
(models.graphdef, no `protobuf` package either), then hand the .pb to openvino.convert_model.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.graphdef import NUMPY_DTYPES, encode_graph

if TYPE_CHECKING:
    import openvino

# Weight dtypes in a TFJS weightsManifest (and in its "quantization" entries).
_WEIGHT_DTYPES: dict[str, type[np.generic]] = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "int8": np.int8,
    "int16": np.int16,
}
# TF's GraphDef producer version when model.json carries none; any recent one will do for a frozen graph.
_DEFAULT_PRODUCER = 1395


def _weight_dtype(name: str, what: str) -> np.dtype:
    try:
        return np.dtype(_WEIGHT_DTYPES[name])
    except KeyError:
        raise ValueError(f"weight {what!r}: unsupported dtype {name!r}") from None


def load_tfjs_weights(model_json: Mapping[str, Any], base: Path) -> dict[str, np.ndarray]:
    """Weights by name, dequantised to their declared dtype.

    Each weightsManifest group is one byte stream split over its shard files, weights packed back to back.
    int64 tensors come back as int32 (TFJS has no int64); the caller casts them to the node's dtype.
    """
    out: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        buf = b"".join((base / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            name, shape = w["name"], [int(d) for d in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            target = _weight_dtype(w["dtype"], name)
            quant = w.get("quantization")
            stored = _weight_dtype(quant["dtype"], name) if quant else target
            size = count * stored.itemsize
            if offset + size > len(buf):
                raise ValueError(f"weight {name!r}: shards end at byte {len(buf)}, need {offset + size}")
            raw = np.frombuffer(buf, stored, count, offset)
            offset += size
            if not quant:
                arr = raw.copy()
            elif quant["dtype"] == "float16":
                arr = raw.astype(target)
            elif "scale" in quant:  # affine uint8/uint16: value = q * scale + min
                real = raw.astype(np.float64) * quant["scale"] + quant["min"]
                # TFJS rounds dequantised values of integer weights.
                arr = np.round(real).astype(target) if np.issubdtype(target, np.integer) else real.astype(target)
            else:
                raise ValueError(f"weight {name!r}: unsupported quantization {quant!r}")
            out[name] = arr.reshape(shape)
        if offset != len(buf):
            raise ValueError(f"weights group {group['paths']}: {len(buf) - offset} bytes left over")
    return out


def _tf_numpy(type_attr: Mapping[str, Any], node: str) -> type[np.generic]:
    name = type_attr.get("type", "")
    if name not in NUMPY_DTYPES:
        raise ValueError(f"node {node!r}: unsupported dtype {name!r}")
    return NUMPY_DTYPES[name]


def _sparse_to_dense(indices: np.ndarray, shape: np.ndarray, values: np.ndarray, default: np.ndarray) -> np.ndarray:
    dense_shape = tuple(int(d) for d in shape.reshape(-1))
    out = np.full(dense_shape, default.reshape(()), dtype=default.dtype)
    if indices.size:
        rows = indices.reshape(-1, len(dense_shape))  # 0-d/1-d indices address a 1-d output
        out[tuple(rows.T)] = np.broadcast_to(values.reshape(-1), (len(rows),))
    return out


def _reachable(nodes: list[dict[str, Any]], outputs: list[str]) -> set[str]:
    by_name = {n["name"]: n for n in nodes}
    keep: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        if name not in by_name:
            raise ValueError(f"graph has no node {name!r}")
        keep.add(name)
        # Inputs look like "node", "node:1" or "^node" (control dependency).
        stack += [i.lstrip("^").split(":")[0] for i in by_name[name].get("input", [])]
    return keep


def tfjs_graphdef(model_json_path: Path) -> bytes:
    """Serialized frozen GraphDef for a TFJS graph model, pruned to its signature outputs."""
    model = json.loads(Path(model_json_path).read_text())
    topo = model["modelTopology"]
    if topo.get("library", {}).get("function"):
        raise ValueError("TFJS graphs with a function library (control flow) are not supported")
    weights = load_tfjs_weights(model, Path(model_json_path).resolve().parent)

    nodes: list[dict[str, Any]] = []
    consts: dict[str, np.ndarray] = {}
    for node in topo["node"]:
        node = dict(node)
        if node["op"] == "Const":
            if node["name"] not in weights:
                raise ValueError(f"Const {node['name']!r} has no weight in weightsManifest")
            value = weights[node["name"]].astype(_tf_numpy(node["attr"]["dtype"], node["name"]))  # int64 <- int32
            node["attr"] = {**node["attr"], "value": {"tensor": value}}
            consts[node["name"]] = value
        elif node["op"] == "SparseToDense" and all(i in consts for i in node.get("input", [])):
            # Fold: the TFJS export leaves constant SparseToDense nodes (reshape targets) that OpenVINO's TF
            # frontend does not turn into constants itself.
            value = _sparse_to_dense(*(consts[i] for i in node["input"]))
            value = value.astype(_tf_numpy(node["attr"]["T"], node["name"]))
            node = {
                "name": node["name"],
                "op": "Const",
                "attr": {"dtype": node["attr"]["T"], "value": {"tensor": value}},
            }
            consts[node["name"]] = value
        nodes.append(node)

    # Prune what the signature outputs do not need: OpenVINO would make every dangling node an extra output.
    outputs = [o.split(":")[0] for o in model.get("signature", {}).get("outputs", {})]
    if not outputs:
        raise ValueError("model.json has no signature outputs")
    keep = _reachable(nodes, outputs)
    producer = int(topo.get("versions", {}).get("producer", 0)) or _DEFAULT_PRODUCER
    return encode_graph([n for n in nodes if n["name"] in keep], producer)


def convert_tfjs(model_json_path: Path) -> openvino.Model:
    """OpenVINO model for a TFJS graph model; outputs carry the TF tensor names (e.g. "Identity:0")."""
    import openvino  # heavy, and only the converting paths need it

    graph = tfjs_graphdef(model_json_path)
    with tempfile.TemporaryDirectory(prefix="vigia-tfjs-") as tmp:
        pb = Path(tmp) / "model.pb"
        pb.write_bytes(graph)
        return openvino.convert_model(str(pb))
