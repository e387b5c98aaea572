"""Minimal protobuf wire-format encoder for TensorFlow's GraphDef (see models.tfjs for why).

Writes the bytes protoc-generated classes would, for the subset of messages a frozen inference graph uses:
GraphDef, NodeDef, AttrValue (+ ListValue), TensorShapeProto, TensorProto and VersionDef. Field numbers follow
tensorflow/core/framework/{graph,node_def,attr_value,tensor,tensor_shape,types,versions}.proto.

Node and attr input is TFJS's model.json, i.e. the proto3 JSON mapping (int64 as strings, bytes as base64,
enums by name), except that a Const value may be given as a numpy array (the weights live in .bin shards).
Anything outside that subset raises ValueError instead of being silently dropped.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

# types.proto DataType values.
DTYPES: dict[str, int] = {
    "DT_FLOAT": 1,
    "DT_DOUBLE": 2,
    "DT_INT32": 3,
    "DT_UINT8": 4,
    "DT_INT16": 5,
    "DT_INT8": 6,
    "DT_STRING": 7,
    "DT_INT64": 9,
    "DT_BOOL": 10,
    "DT_UINT16": 17,
    "DT_HALF": 19,
}
NUMPY_DTYPES: dict[str, type[np.generic]] = {
    "DT_FLOAT": np.float32,
    "DT_DOUBLE": np.float64,
    "DT_INT32": np.int32,
    "DT_UINT8": np.uint8,
    "DT_INT16": np.int16,
    "DT_INT8": np.int8,
    "DT_INT64": np.int64,
    "DT_BOOL": np.bool_,
    "DT_UINT16": np.uint16,
    "DT_HALF": np.float16,
}
_DTYPE_OF_NUMPY = {np.dtype(v): k for k, v in NUMPY_DTYPES.items()}

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


# --- wire format -------------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """Base-128 varint; negatives as 64-bit two's complement (always 10 bytes), as protobuf does for int32/64."""
    if n < 0:
        n += 1 << 64
    if not 0 <= n < 1 << 64:
        raise ValueError(f"varint out of range: {n}")
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def field_varint(field: int, n: int) -> bytes:
    return _key(field, _VARINT) + varint(n)


def field_bytes(field: int, payload: bytes) -> bytes:
    """Length-delimited field: bytes, strings and nested messages."""
    return _key(field, _LEN) + varint(len(payload)) + payload


def field_float(field: int, x: float) -> bytes:
    return _key(field, _FIXED32) + struct.pack("<f", x)


def field_packed_varints(field: int, values: Iterable[int]) -> bytes:
    payload = b"".join(varint(int(v)) for v in values)
    return field_bytes(field, payload) if payload else b""  # an empty packed field is simply absent


def field_packed_fixed(field: int, values: np.ndarray) -> bytes:
    """Packed float/double: the little-endian array bytes are the payload."""
    return field_bytes(field, values.astype(values.dtype.newbyteorder("<")).tobytes()) if values.size else b""


# --- messages ----------------------------------------------------------------------------------------------


def dtype_enum(name: str) -> int:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unsupported TF dtype {name!r}") from None


def encode_shape(shape: Mapping[str, Any]) -> bytes:
    """TensorShapeProto from its JSON form: {"dim": [{"size": "-1"}, {}], "unknownRank": true}."""
    extra = set(shape) - {"dim", "unknownRank"}
    if extra:
        raise ValueError(f"unsupported TensorShapeProto fields {sorted(extra)}")
    out = b""
    for dim in shape.get("dim", []):
        if set(dim) - {"size", "name"}:
            raise ValueError(f"unsupported TensorShapeProto.Dim fields {sorted(dim)}")
        size = int(dim.get("size", 0))
        body = (field_varint(1, size) if size else b"") + (
            field_bytes(2, dim["name"].encode()) if dim.get("name") else b""
        )
        out += field_bytes(2, body)
    if shape.get("unknownRank"):
        out += field_varint(3, 1)
    return out


def encode_tensor(arr: np.ndarray) -> bytes:
    """TensorProto for a numpy array; the TF dtype follows the array's dtype.

    Scalars go into the typed repeated fields (float_val, int_val, ...), as TensorFlow writes them: OpenVINO's
    TF frontend misreads a scalar's tensor_content once the (empty) tensor_shape is left out, which is how
    protobuf serializes a scalar shape (a ConcatV2 axis / Mul factor came out wrong).
    """
    arr = np.asarray(arr)
    try:
        name = _DTYPE_OF_NUMPY[arr.dtype]
    except KeyError:
        raise ValueError(f"unsupported tensor dtype {arr.dtype}") from None
    out = field_varint(1, DTYPES[name])
    if arr.ndim == 0:  # an absent tensor_shape is the scalar shape; protoc-generated code omits it too
        return out + _scalar_values(name, arr.reshape(1))
    out += field_bytes(2, encode_shape({"dim": [{"size": str(d)} for d in arr.shape]}))
    return out + field_bytes(4, np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes())


def _scalar_values(name: str, flat: np.ndarray) -> bytes:
    if name == "DT_FLOAT":
        return field_packed_fixed(5, flat)
    if name == "DT_DOUBLE":
        return field_packed_fixed(6, flat)
    if name in ("DT_INT32", "DT_UINT8", "DT_INT16", "DT_INT8", "DT_UINT16"):
        return field_packed_varints(7, flat.tolist())
    if name == "DT_INT64":
        return field_packed_varints(10, flat.tolist())
    if name == "DT_BOOL":
        return field_packed_varints(11, [int(v) for v in flat])
    # DT_HALF: half_val holds the raw float16 bits in int32s.
    return field_packed_varints(13, flat.view(np.uint16).tolist())


def _encode_json_tensor(tensor: Mapping[str, Any], where: str) -> bytes:
    extra = set(tensor) - {"dtype", "tensorShape"}
    if extra:
        raise ValueError(f"{where}: unsupported TensorProto JSON fields {sorted(extra)} (pass a numpy array)")
    out = field_varint(1, dtype_enum(tensor["dtype"])) if "dtype" in tensor else b""
    return out + (field_bytes(2, encode_shape(tensor["tensorShape"])) if "tensorShape" in tensor else b"")


def _encode_tensor_value(value: Any, where: str) -> bytes:
    return encode_tensor(value) if isinstance(value, np.ndarray) else _encode_json_tensor(value, where)


def _encode_list(value: Mapping[str, Any], where: str) -> bytes:
    out = b""
    for key, items in value.items():
        if key == "s":
            out += b"".join(field_bytes(2, base64.b64decode(s)) for s in items)
        elif key == "i":
            out += field_packed_varints(3, (int(v) for v in items))
        elif key == "f":
            out += field_packed_fixed(4, np.array([float(v) for v in items], np.float32))
        elif key == "b":
            out += field_packed_varints(5, (int(bool(v)) for v in items))
        elif key == "type":
            out += field_packed_varints(6, (dtype_enum(t) for t in items))
        elif key == "shape":
            out += b"".join(field_bytes(7, encode_shape(s)) for s in items)
        elif key == "tensor":
            out += b"".join(field_bytes(8, _encode_tensor_value(t, where)) for t in items)
        else:
            raise ValueError(f"{where}: unsupported AttrValue list kind {key!r}")
    return out


def encode_attr_value(name: str, value: Mapping[str, Any]) -> bytes:
    """AttrValue from its JSON form; `name` only labels errors. Exactly one kind may be set (it is a oneof)."""
    if len(value) > 1:
        raise ValueError(f"attr {name!r}: more than one value kind {sorted(value)}")
    if not value:
        return b""
    ((kind, v),) = value.items()
    # Oneof members are written even when they hold the default (b=false, i=0), else the attr reads as unset.
    if kind == "list":
        return field_bytes(1, _encode_list(v, f"attr {name!r}"))
    if kind == "s":
        return field_bytes(2, base64.b64decode(v))
    if kind == "i":
        return field_varint(3, int(v))
    if kind == "f":
        return field_float(4, float(v))  # float("NaN") / float("Infinity") cover proto3 JSON's specials
    if kind == "b":
        return field_varint(5, int(bool(v)))
    if kind == "type":
        return field_varint(6, dtype_enum(v))
    if kind == "shape":
        return field_bytes(7, encode_shape(v))
    if kind == "tensor":
        return field_bytes(8, _encode_tensor_value(v, f"attr {name!r}"))
    raise ValueError(f"attr {name!r}: unsupported AttrValue kind {kind!r}")


# Debug info only names the source of each node; dropping it changes nothing a converter reads.
_IGNORED_NODE_KEYS = {"experimentalDebugInfo"}


def encode_node(node: Mapping[str, Any]) -> bytes:
    """NodeDef from a TFJS node dict: {"name", "op", "input": [...], "device", "attr": {name: AttrValue}}."""
    extra = set(node) - {"name", "op", "input", "device", "attr"} - _IGNORED_NODE_KEYS
    if extra:
        raise ValueError(f"node {node.get('name')!r}: unsupported NodeDef fields {sorted(extra)}")
    out = field_bytes(1, node["name"].encode()) + field_bytes(2, node["op"].encode())
    out += b"".join(field_bytes(3, i.encode()) for i in node.get("input", []))
    if node.get("device"):
        out += field_bytes(4, node["device"].encode())
    # attr is a map<string, AttrValue>: each entry is a message {key = 1, value = 2}; sorted for stable bytes.
    for key, value in sorted(node.get("attr", {}).items()):
        entry = field_bytes(1, key.encode()) + field_bytes(2, encode_attr_value(key, value))
        out += field_bytes(5, entry)
    return out


def encode_graph(nodes: Iterable[Mapping[str, Any]], producer: int) -> bytes:
    """GraphDef {node = 1, versions = 4 (VersionDef {producer = 1})}."""
    out = b"".join(field_bytes(1, encode_node(n)) for n in nodes)
    return out + field_bytes(4, field_varint(1, producer))
