"""NanoDet-m's TFJS graph as an IR with the contract every prepared model keeps (models.prepare).

The network takes NCHW float BGR normalised by its training mean and std, and returns per stride (8, 16,
32) sigmoid class scores [1,N,80] and, for each side of a box (left, top, right, bottom), a distribution
over 11 distance bins [1,N,44] (GFL). Both ends move into the IR: OpenVINO's pre-processing takes the
NHWC uint8 RGB that `PersonDetector` feeds every model, and a few ops turn the distributions into boxes
(softmax, expected bin, times the stride, from the cell's centre), so decoding is one array pass like
the SSDs' and runs wherever the IR runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import openvino as ov

    from models.catalog import ModelSpec

MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
STRIDES = (8, 16, 32)
BINS = 11  # distance bins per side: 0..10 strides
# Output names of the TFJS export: class scores per stride, then distance distributions per stride.
CLASS_OUTPUTS = ("Identity", "Identity_1", "Identity_2")
DISTANCE_OUTPUTS = ("Identity_3", "Identity_4", "Identity_5")


def convert_nanodet(spec: ModelSpec, model_json: Path) -> ov.Model:
    from models.tfjs import convert_tfjs

    return with_contract(convert_tfjs(model_json), spec)


def cell_centres(width: int, height: int, stride: int) -> np.ndarray:
    """[N,4] (cx, cy, cx, cy) of each cell, row by row, in input pixels."""
    ys, xs = np.mgrid[0 : height // stride, 0 : width // stride]
    cx, cy = (xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride
    return np.stack([cx, cy, cx, cy], axis=1).astype(np.float32)


def with_contract(model: ov.Model, spec: ModelSpec) -> ov.Model:
    """NHWC uint8 RGB in; boxes [N,4] (normalised ymin,xmin,ymax,xmax) and person scores [N] out."""
    import openvino as ov
    import openvino.opset13 as ops

    def const(values, dtype=np.float32):
        return ops.constant(np.asarray(values, dtype=dtype))

    width, height = spec.input_size
    # Pre-processing as plain ops in front of the network. OpenVINO's PrePostProcessor would be the usual
    # way, but with the box decoding below it gave wrong scores (up to 0.17 off) on the 2026.4 CPU plugin.
    old = model.get_parameters()[0]
    image = ops.parameter([1, height, width, 3], ov.Type.u8, name="image")
    bgr = ops.gather(ops.convert(image, ov.Type.f32), const([2, 1, 0], np.int64), const(3, np.int64))
    normalised = ops.divide(ops.subtract(bgr, const(MEAN_BGR)), const(STD_BGR))
    nchw = ops.transpose(normalised, const([0, 3, 1, 2], np.int64))
    for target in list(old.output(0).get_target_inputs()):
        target.replace_source_output(nchw.output(0))
    model.replace_parameter(0, image)
    # The producers' outputs, not the Result nodes' (model.outputs): the raw results are dropped below.
    outputs = {name.split(":")[0]: result.input_value(0)
               for result in model.get_results() for name in result.output(0).get_names()}
    missing = [n for n in (*CLASS_OUTPUTS, *DISTANCE_OUTPUTS) if n not in outputs]
    if missing:
        raise ValueError(f"{spec.model_id}: the graph lacks outputs {missing} (has {sorted(outputs)})")
    old_results = list(model.get_results())
    boxes, scores = [], []
    for stride, class_name, distance_name in zip(STRIDES, CLASS_OUTPUTS, DISTANCE_OUTPUTS, strict=True):
        cells = (width // stride) * (height // stride)
        person = ops.gather(outputs[class_name], const([spec.person_class], np.int64), const(2, np.int64))
        scores.append(ops.reshape(person, const([cells], np.int64), False))
        bins = ops.softmax(ops.reshape(outputs[distance_name], const([cells, 4, BINS], np.int64), False), 2)
        # The expected bin as a MatMul: softmax * bins -> ReduceSum came out as zero distances for the first
        # stride once the three strides were concatenated (OpenVINO 2026.4 CPU plugin); MatMul computes it right.
        expected = ops.matmul(bins, const((np.arange(BINS) * stride).reshape(BINS, 1)), False, False)
        distance = ops.reshape(expected, const([cells, 4], np.int64), False)
        xyxy = ops.add(const(cell_centres(width, height, stride)), ops.multiply(distance, const([-1, -1, 1, 1])))
        yxyx = ops.gather(xyxy, const([1, 0, 3, 2], np.int64), const(1, np.int64))
        boxes.append(ops.multiply(yxyx, const([1 / height, 1 / width, 1 / height, 1 / width])))
    boxes_out = ops.result(ops.concat(boxes, 0))
    scores_out = ops.result(ops.concat(scores, 0))
    boxes_out.output(0).get_tensor().set_names({"boxes"})
    scores_out.output(0).get_tensor().set_names({"person_scores"})
    for result in old_results:
        model.remove_result(result)
    model.add_results([boxes_out, scores_out])
    model.set_friendly_name(spec.model_id)
    return model
