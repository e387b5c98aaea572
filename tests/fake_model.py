"""A prepared-model folder as models.prepare writes it, for packaging tests: a tiny fake IR with a real
manifest and real checksums (no network, no conversion)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from models.manifest import MANIFEST_NAME, ModelManifest


def write_fake_prepared_model(folder: Path, version: str, weights: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.xml").write_text("<net/>")
    (folder / "model.bin").write_bytes(weights)
    sha = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in ("model.xml", "model.bin")}
    manifest = ModelManifest(
        model_id="ssd-mobilenet-v2-coco", version=version, precision="FP32", architecture="ssd",
        source_package="pkg", source_package_version="1", source_wheel_sha256="0" * 64, weights_member="w",
        weights_sha256="0" * 64, license="Apache-2.0", provenance="test", ir_xml="model.xml", ir_bin="model.bin",
        ir_xml_sha256=sha["model.xml"], ir_bin_sha256=sha["model.bin"], input_size=(300, 300), person_class=1,
        labels={1: "person"}, outputs=["boxes", "scores"], prepared_at=datetime.now(UTC), openvino_version="x",
    )
    (folder / MANIFEST_NAME).write_text(manifest.model_dump_json())
    return folder
