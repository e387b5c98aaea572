"""TFJS graph model -> GraphDef bytes -> OpenVINO, without TensorFlow or protobuf (models.graphdef, models.tfjs)."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.graphdef import (
    encode_attr_value,
    encode_node,
    encode_shape,
    encode_tensor,
    field_packed_varints,
    varint,
)
from models.tfjs import load_tfjs_weights, tfjs_graphdef

# --- wire encoder against hand-computed bytes ----------------------------------------------------------


def test_varints() -> None:
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    # Negative int64: 64-bit two's complement, always 10 bytes.
    assert varint(-1) == b"\xff" * 9 + b"\x01"
    assert varint(-2) == b"\xfe" + b"\xff" * 8 + b"\x01"


def test_packed_repeated() -> None:
    # The protobuf encoding guide's example, as field 4: 22 06 03 8e 02 9e a7 05.
    assert field_packed_varints(4, [3, 270, 86942]) == bytes.fromhex("2206038e029ea705")
    assert field_packed_varints(4, []) == b""  # empty packed fields are absent


def test_nested_shape_message() -> None:
    # dim = 2, each a Dim {size = 1}; -1 is a 10-byte varint; size 0 (the default) is left out.
    expected = b"\x12\x02\x08\x02" + b"\x12\x0b\x08" + b"\xff" * 9 + b"\x01" + b"\x12\x00"
    assert encode_shape({"dim": [{"size": "2"}, {"size": "-1"}, {}]}) == expected
    assert encode_shape({"unknownRank": True}) == b"\x18\x01"


def test_attr_values() -> None:
    assert encode_attr_value("T", {"type": "DT_FLOAT"}) == b"\x30\x01"
    assert encode_attr_value("N", {"i": "2"}) == b"\x18\x02"
    # A oneof member holding the default is still written, else TF would read the attr as unset.
    assert encode_attr_value("flag", {"b": False}) == b"\x28\x00"
    assert encode_attr_value("alpha", {"f": 0.2}) == b"\x25" + struct.pack("<f", 0.2)
    assert encode_attr_value("padding", {"s": base64.b64encode(b"SAME").decode()}) == b"\x12\x04SAME"
    # list { i: [1, 2] } -> 0a 04 (1a 02 01 02); an empty list is still a set list.
    assert encode_attr_value("strides", {"list": {"i": ["1", "2"]}}) == b"\x0a\x04\x1a\x02\x01\x02"
    assert encode_attr_value("explicit_paddings", {"list": {}}) == b"\x0a\x00"


def test_unsupported_attr_names_it() -> None:
    with pytest.raises(ValueError, match="my_fn"):
        encode_attr_value("my_fn", {"func": {"name": "f"}})
    with pytest.raises(ValueError, match="shapes"):
        encode_attr_value("shapes", {"list": {"func": []}})
    with pytest.raises(ValueError, match="DT_COMPLEX64"):
        encode_attr_value("T", {"type": "DT_COMPLEX64"})


def test_tensors() -> None:
    # Scalars use the typed fields (OpenVINO misreads a scalar tensor_content) and leave the shape out.
    assert encode_tensor(np.array(-1, np.int32)) == b"\x08\x03" + b"\x3a\x0a" + b"\xff" * 9 + b"\x01"
    assert encode_tensor(np.array(1.5, np.float32)) == b"\x08\x01\x2a\x04" + struct.pack("<f", 1.5)
    assert encode_tensor(np.array(True)) == b"\x08\x0a\x5a\x01\x01"
    # Arrays: dtype, shape { dim { size: 2 } }, tensor_content (raw little-endian).
    arr = np.array([1, -2], np.int64)
    assert encode_tensor(arr) == b"\x08\x09\x12\x04\x12\x02\x08\x02\x22\x10" + arr.astype("<i8").tobytes()


def test_node_def() -> None:
    node = {"name": "a", "op": "Add", "input": ["x", "^y"], "attr": {"T": {"type": "DT_FLOAT"}}}
    entry = b"\x0a\x01T" + b"\x12\x02\x30\x01"  # map entry {key = 1, value = 2}
    assert encode_node(node) == b"\x0a\x01a\x12\x03Add\x1a\x01x\x1a\x02^y" + b"\x2a" + bytes([len(entry)]) + entry
    with pytest.raises(ValueError, match="unsupported NodeDef fields"):
        encode_node({**node, "surprise": 1})


# --- a tiny TFJS graph model ---------------------------------------------------------------------------

W = np.array([0.5, -1.25, 2.0, 3.0], np.float32)  # exact in float16
SCALE = 3.0


def _const(name: str, dtype: str, shape: list[int]) -> dict[str, Any]:
    tensor_shape = {"dim": [{"size": str(d)} if d else {} for d in shape]}
    return {
        "name": name,
        "op": "Const",
        "attr": {"dtype": {"type": dtype}, "value": {"tensor": {"dtype": dtype, "tensorShape": tensor_shape}}},
    }


def _write_model(tmp_path: Path) -> Path:
    """x[1,4] -> Add(w) -> Mul(3) -> ConcatV2(self, axis 1) -> Reshape(SparseToDense of consts = [-1, 2]) -> Identity.

    Also a node that nothing downstream of the outputs uses ("Dangling"), which the conversion must drop.
    """
    f32 = {"T": {"type": "DT_FLOAT"}}
    nodes = [
        {
            "name": "x",
            "op": "Placeholder",
            "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": [{"size": "1"}, {"size": "4"}]}}},
        },
        _const("w", "DT_FLOAT", [4]),
        _const("scale", "DT_FLOAT", []),
        _const("axis", "DT_INT32", []),
        _const("s2d/indices", "DT_INT64", [1, 1]),
        _const("s2d/shape", "DT_INT64", [1]),
        _const("s2d/values", "DT_INT64", [1]),
        _const("s2d/default", "DT_INT64", []),
        {"name": "add", "op": "Add", "input": ["x", "w"], "attr": f32},
        {"name": "mul", "op": "Mul", "input": ["add", "scale"], "attr": f32},
        {"name": "Dangling", "op": "Sub", "input": ["x", "w"], "attr": f32},
        {
            "name": "cat",
            "op": "ConcatV2",
            "input": ["mul", "mul", "axis"],
            "attr": {**f32, "N": {"i": "2"}, "Tidx": {"type": "DT_INT32"}},
        },
        {
            "name": "s2d",
            "op": "SparseToDense",
            "input": ["s2d/indices", "s2d/shape", "s2d/values", "s2d/default"],
            "attr": {"T": {"type": "DT_INT64"}, "Tindices": {"type": "DT_INT64"}, "validate_indices": {"b": True}},
        },
        {"name": "reshape", "op": "Reshape", "input": ["cat", "s2d"], "attr": {**f32, "Tshape": {"type": "DT_INT64"}}},
        {"name": "Identity", "op": "Identity", "input": ["reshape"], "attr": f32},
    ]
    # Shard layout: w as float16 (quantised float32), then the rest unquantised; int64 is stored as int32.
    plain = [
        ("scale", "float32", [], np.array(SCALE, np.float32)),
        ("axis", "int32", [], np.array(1, np.int32)),
        ("s2d/indices", "int32", [1, 1], np.array([[1]], np.int32)),
        ("s2d/shape", "int32", [1], np.array([2], np.int32)),
        ("s2d/values", "int32", [1], np.array([2], np.int32)),
        ("s2d/default", "int32", [], np.array(-1, np.int32)),
    ]
    data = W.astype(np.float16).tobytes() + b"".join(a.tobytes() for *_, a in plain)
    (tmp_path / "group1-shard1of2.bin").write_bytes(data[:5])  # split mid-weight: shards are one stream
    (tmp_path / "group1-shard2of2.bin").write_bytes(data[5:])
    weights = [{"name": "w", "shape": [4], "dtype": "float32", "quantization": {"dtype": "float16"}}]
    weights += [{"name": n, "shape": s, "dtype": d} for n, d, s, _ in plain]
    model = {
        "format": "graph-model",
        "signature": {"outputs": {"Identity:0": {"name": "Identity:0", "dtype": "DT_FLOAT"}}},
        "modelTopology": {"node": nodes, "library": {}, "versions": {}},
        "weightsManifest": [{"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"], "weights": weights}],
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    return path


def test_weights_dequantised(tmp_path: Path) -> None:
    model = json.loads(_write_model(tmp_path).read_text())
    weights = load_tfjs_weights(model, tmp_path)
    assert weights["w"].dtype == np.float32 and np.array_equal(weights["w"], W)
    assert weights["s2d/default"].shape == () and weights["s2d/default"] == -1
    assert weights["s2d/indices"].shape == (1, 1)


def test_affine_quantised_weights(tmp_path: Path) -> None:
    (tmp_path / "q.bin").write_bytes(np.array([0, 2, 255], np.uint8).tobytes())
    manifest = {
        "weightsManifest": [
            {
                "paths": ["q.bin"],
                "weights": [
                    {
                        "name": "q",
                        "shape": [3],
                        "dtype": "float32",
                        "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0},
                    },
                ],
            }
        ]
    }
    np.testing.assert_array_equal(load_tfjs_weights(manifest, tmp_path)["q"], np.array([-1.0, 0.0, 126.5], np.float32))


def test_weights_must_fill_the_shards(tmp_path: Path) -> None:
    (tmp_path / "q.bin").write_bytes(b"\x00" * 8)
    manifest = {"weightsManifest": [{"paths": ["q.bin"], "weights": [{"name": "q", "shape": [1], "dtype": "int32"}]}]}
    with pytest.raises(ValueError, match="left over"):
        load_tfjs_weights(manifest, tmp_path)


def test_graphdef_pruned_and_folded(tmp_path: Path) -> None:
    graph = tfjs_graphdef(_write_model(tmp_path))
    assert b"Dangling" not in graph and b"Sub" not in graph
    assert b"SparseToDense" not in graph and b"s2d/indices" not in graph  # folded, its inputs pruned
    assert b"Identity" in graph


def test_converts_and_runs_on_openvino(tmp_path: Path) -> None:
    ov = pytest.importorskip("openvino")
    from models.tfjs import convert_tfjs

    model = convert_tfjs(_write_model(tmp_path))
    assert not list(tmp_path.glob("*.pb"))
    assert [sorted(o.get_names()) for o in model.outputs] == [["Identity:0", "reshape:0"]]
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    x = np.array([[1.0, 2.0, -3.0, 0.25]], np.float32)
    got = compiled({0: x})[compiled.outputs[0]]
    y = (x + W) * SCALE
    np.testing.assert_array_equal(got, np.concatenate([y, y], axis=1).reshape(-1, 2))
