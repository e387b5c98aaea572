"""NanoDet's IR contract (models.nanodet_graph) on a small stand-in network with the same outputs.

The stand-in's class scores are the network input's blue channel averaged over each cell, so the test sees
what the pre-processing in front of it did; its distance logits are fixed random numbers, decoded here in
numpy the way NanoDet's GFL head is read (softmax over the bins, expected bin times the stride).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.catalog import get_spec
from models.nanodet_graph import (
    BINS,
    CLASS_OUTPUTS,
    DISTANCE_OUTPUTS,
    MEAN_BGR,
    STD_BGR,
    STRIDES,
    cell_centres,
    with_contract,
)

ov = pytest.importorskip("openvino")
ops = pytest.importorskip("openvino.opset13")

SIZE = 64  # cells: 8x8, 4x4, 2x2


def stand_in(logits: dict[int, np.ndarray]) -> ov.Model:
    image = ops.parameter([1, 3, SIZE, SIZE], np.float32, name="input_1")
    blue = ops.gather(image, ops.constant(np.array([0], np.int64)), ops.constant(np.int64(1)))
    results = []
    for stride, name in zip(STRIDES, CLASS_OUTPUTS, strict=True):
        pooled = ops.avg_pool(blue, [stride, stride], [0, 0], [0, 0], [stride, stride], True)
        cells = (SIZE // stride) ** 2
        person = ops.reshape(pooled, ops.constant(np.array([1, cells, 1], np.int64)), False)
        other = ops.constant(np.zeros((1, cells, 1), np.float32))
        results.append((name, ops.concat([person, other], 2)))
    for stride, name in zip(STRIDES, DISTANCE_OUTPUTS, strict=True):
        # Depends on the input (times zero) so that it stays an output of the network, not a folded constant.
        zero = ops.multiply(ops.reduce_sum(image, ops.constant(np.array([0, 1, 2, 3], np.int64)), False),
                            ops.constant(np.float32(0)))
        results.append((name, ops.add(ops.constant(logits[stride]), zero)))
    outs = []
    for name, node in results:
        result = ops.result(node)
        result.output(0).get_tensor().set_names({f"{name}:0"})
        outs.append(result)
    return ov.Model(outs, [image], "stand-in")


def numpy_boxes(logits: dict[int, np.ndarray]) -> np.ndarray:
    out = []
    for stride in STRIDES:
        raw = logits[stride][0].reshape(-1, 4, BINS).astype(np.float64)
        soft = np.exp(raw - raw.max(-1, keepdims=True))
        soft /= soft.sum(-1, keepdims=True)
        distance = (soft * np.arange(BINS)).sum(-1) * stride
        xyxy = cell_centres(SIZE, SIZE, stride) + distance * np.array([-1, -1, 1, 1])
        out.append(xyxy[:, [1, 0, 3, 2]] / SIZE)
    return np.concatenate(out)


def test_contract_feeds_the_network_normalised_bgr_and_decodes_its_distances() -> None:
    rng = np.random.default_rng(0)
    logits = {s: rng.normal(0, 2, (1, (SIZE // s) ** 2, 4 * BINS)).astype(np.float32) for s in STRIDES}
    spec = replace(get_spec("nanodet-m"), input_size=(SIZE, SIZE))
    model = with_contract(stand_in(logits), spec)
    assert [o.get_any_name() for o in model.outputs] == ["boxes", "person_scores"]
    assert list(model.input(0).get_shape()) == [1, SIZE, SIZE, 3] and model.input(0).get_element_type() == ov.Type.u8
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    rgb = rng.integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
    result = compiled({0: rgb})
    boxes, scores = result[compiled.outputs[0]], result[compiled.outputs[1]]

    blue = (rgb[0, :, :, 2].astype(np.float64) - MEAN_BGR[0]) / STD_BGR[0]  # the network's channel 0 is blue
    expected_scores = np.concatenate([blue.reshape(SIZE // s, s, SIZE // s, s).mean(axis=(1, 3)).ravel()
                                      for s in STRIDES])
    np.testing.assert_allclose(scores, expected_scores, atol=1e-4)
    np.testing.assert_allclose(boxes, numpy_boxes(logits), atol=1e-5)


def test_contract_names_the_outputs_it_misses() -> None:
    image = ops.parameter([1, 3, SIZE, SIZE], np.float32)
    lone = ops.result(ops.relu(image))
    lone.output(0).get_tensor().set_names({"Identity:0"})
    spec = replace(get_spec("nanodet-m"), input_size=(SIZE, SIZE))
    with pytest.raises(ValueError, match="lacks outputs"):
        with_contract(ov.Model([lone], [image]), spec)
