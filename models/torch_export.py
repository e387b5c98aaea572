"""Prepared OpenVINO IR → a portable op list (JSON) + constants (.npz) that models.torch_backend rebuilds in torch.

Why: the GPU verifier machines carry PyTorch but not OpenVINO, and no ONNX file of our cut graph exists. The
export runs once, here, where OpenVINO is installed; the torch side then needs only numpy + torch.

Two rewrites happen on the way, both checked, never assumed:
- the TF-OD preprocessor `map_fn` (a Loop that bilinearly resizes each image to 300×300) is an identity on an
  input that is already 300×300 (the only input the IR accepts), so its output is aliased to its input and the
  Loop's TensorArray scaffolding is dropped;
- ops no graph output depends on are removed.

Artifacts are cached beside the IR (`torch_graph.json`, `torch_consts.npz`, `torch_manifest.json` with sha256
of each) and regenerated when the IR or the requested weight dtype changes. They are build outputs: never commit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.checksums import sha256_file as _sha256

GRAPH_NAME = "torch_graph.json"
CONSTS_NAME = "torch_consts.npz"
TORCH_MANIFEST_NAME = "torch_manifest.json"
FORMAT = "vigia-torch-graph/1"
# Float constants at least this big are weights; only those are stored in the requested dtype.
WEIGHT_MIN_SIZE = 64


class ExportError(RuntimeError):
    pass



def _src(inp: Any) -> tuple[Any, int]:
    out = inp.get_source_output()
    return out.get_node(), out.get_index()


def _check_identity_resize_loop(loop: Any) -> int:
    """The Loop must be TF's per-image ResizeBilinear to the image's own size; returns the loop input index of
    the image tensor array (whose source is the float image)."""
    body = loop.get_function()
    interps = [op for op in body.get_ordered_ops() if op.get_type_name() == "Interpolate"]
    kinds = {op.get_type_name() for op in body.get_ordered_ops()}
    allowed = {"Parameter", "Constant", "Add", "Less", "LogicalAnd", "Result", "ShapeOf", "Gather", "Concat",
               "Broadcast", "Reshape", "ScatterUpdate", "Unsqueeze", "Squeeze", "Interpolate"}
    if len(interps) != 1 or not kinds <= allowed:
        raise ExportError(f"Loop {loop.get_friendly_name()}: not the TF-OD resize map_fn (ops {sorted(kinds)})")
    interp = interps[0]
    in_shape = list(interp.input(0).get_partial_shape().to_shape())
    out_shape = list(interp.output(0).get_partial_shape().to_shape())
    if in_shape != out_shape:
        raise ExportError(f"Loop resize {in_shape} → {out_shape} is not an identity")
    # The image enters as an invariant input: the body Parameter that the Gather(·, iteration) reads.
    gather = _src(interp.input(0))[0]
    gather = _src(gather.input(0))[0] if gather.get_type_name() == "Unsqueeze" else gather
    body_param = _src(gather.input(0))[0]
    params = list(body.get_parameters())
    for desc in loop.get_input_descriptions():
        if params[desc.body_parameter_index] is body_param:
            return desc.input_index
    raise ExportError("could not find the Loop's image input")


def _graph_from_model(model: Any, weights_dtype: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    ops = list(model.get_ordered_ops())
    alias: dict[tuple[int, int], tuple[Any, int]] = {}  # (node id, port) → replacement source

    for op in ops:
        if op.get_type_name() != "Loop":
            continue
        image_index = _check_identity_resize_loop(op)
        scatter = _src(op.input(image_index))[0]
        if scatter.get_type_name() != "ScatterNDUpdate":
            raise ExportError("Loop image input is not the TensorArray scatter")
        image = _src(scatter.input(2))  # the float image written into the TensorArray
        # Loop out 0 → Gather(range over batch) → Reshape(TensorArrayGather): the whole chain is the image.
        for target in op.output(0).get_target_inputs():
            gather = target.get_node()
            if gather.get_type_name() != "Gather":
                raise ExportError("Loop output 0 is not read by a Gather")
            for target2 in gather.output(0).get_target_inputs():
                reshape = target2.get_node()
                if reshape.get_type_name() != "Reshape":
                    raise ExportError("TensorArray gather is not followed by a Reshape")
                alias[(id(reshape), 0)] = image

    def resolve(node: Any, port: int) -> tuple[Any, int]:
        while (id(node), port) in alias:
            node, port = alias[(id(node), port)]
        return node, port

    # Dead-code elimination from the Results, through aliases.
    live: set[int] = set()
    stack = [r for r in model.get_results()]
    while stack:
        node = stack.pop()
        if id(node) in live:
            continue
        live.add(id(node))
        for inp in node.inputs():
            stack.append(resolve(*_src(inp))[0])

    index: dict[int, int] = {}
    records: list[dict[str, Any]] = []
    consts: dict[str, np.ndarray] = {}
    for op in ops:
        if id(op) not in live:
            continue
        kind = op.get_type_name()
        if kind == "Loop":
            raise ExportError("a Loop is still live after the rewrite")
        rec: dict[str, Any] = {
            "id": len(records),
            "type": kind,
            "name": op.get_friendly_name(),
            "inputs": [[index[id(n)], p] for n, p in (resolve(*_src(i)) for i in op.inputs())],
            "attrs": {} if kind == "Constant" else op.get_attributes(),
            "out_shapes": [str(o.get_partial_shape()) for o in op.outputs()],
        }
        if kind == "Constant":
            data = np.array(op.get_data())
            if weights_dtype == "float16" and data.dtype == np.float32 and data.size >= WEIGHT_MIN_SIZE:
                data = data.astype(np.float16)
            key = f"c{rec['id']}"
            consts[key] = data
            rec["const"] = key
        if kind == "Result":
            names = list(op.output(0).get_names()) or list(op.input(0).get_source_output().get_names())
            rec["output_name"] = sorted(names)[0] if names else op.get_friendly_name()
        index[id(op)] = rec["id"]
        records.append(rec)

    params = model.get_parameters()
    graph = {
        "format": FORMAT,
        "inputs": [{"name": p.get_friendly_name(), "shape": list(p.get_partial_shape().to_shape()),
                    "dtype": str(p.get_element_type())} for p in params],
        "outputs": [r["output_name"] for r in records if r["type"] == "Result"],
        "ops": records,
    }
    return graph, consts


def _manifest_matches(out: Path, ir_bin_sha256: str, weights_dtype: str) -> bool:
    path = out / TORCH_MANIFEST_NAME
    if not path.exists():
        return False
    try:
        meta = json.loads(path.read_text())
        return (meta.get("format") == FORMAT and meta.get("source_ir_bin_sha256") == ir_bin_sha256
                and meta.get("weights_dtype") == weights_dtype
                and _sha256(out / GRAPH_NAME) == meta.get("graph_sha256")
                and _sha256(out / CONSTS_NAME) == meta.get("consts_sha256"))
    except (OSError, ValueError):
        return False


def export_for_torch(model_dir: Path, out_dir: Path | None = None, weights_dtype: str = "float32",
                     force: bool = False) -> Path:
    """Write (or reuse) the torch artifacts of the prepared model in `model_dir`; returns the folder holding them
    (`out_dir`, by default the IR's own folder). `weights_dtype="float16"` halves the size (for carrying)."""
    import openvino as ov

    from models.manifest import load_manifest

    if weights_dtype not in ("float32", "float16"):
        raise ValueError(f"weights_dtype {weights_dtype!r}: float32 or float16")
    model_dir = Path(model_dir)
    out = Path(out_dir) if out_dir else model_dir
    manifest = load_manifest(model_dir)
    if not force and _manifest_matches(out, manifest.ir_bin_sha256, weights_dtype):
        return out
    model = ov.Core().read_model(str(model_dir / manifest.ir_xml))
    graph, consts = _graph_from_model(model, weights_dtype)
    out.mkdir(parents=True, exist_ok=True)
    graph_path, consts_path = out / GRAPH_NAME, out / CONSTS_NAME
    # Write beside, then rename: a half-written export must never look valid.
    tmp_graph, tmp_consts = out / (GRAPH_NAME + ".tmp"), out / (CONSTS_NAME + ".tmp.npz")
    tmp_graph.write_text(json.dumps(graph, indent=1, default=str))
    np.savez(tmp_consts, **consts)
    tmp_graph.replace(graph_path)
    tmp_consts.replace(consts_path)
    meta = {
        "format": FORMAT,
        "model_id": manifest.model_id,
        "version": manifest.version,
        "precision": manifest.precision,
        "weights_dtype": weights_dtype,
        "input_size": list(manifest.input_size),
        "outputs": graph["outputs"],
        "source_ir_xml_sha256": manifest.ir_xml_sha256,
        "source_ir_bin_sha256": manifest.ir_bin_sha256,
        "graph_sha256": _sha256(graph_path),
        "consts_sha256": _sha256(consts_path),
        "openvino_version": ov.get_version(),
        "exported_at": datetime.now(UTC).isoformat(),
    }
    (out / TORCH_MANIFEST_NAME).write_text(json.dumps(meta, indent=2))
    return out
