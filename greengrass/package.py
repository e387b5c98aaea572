"""`vigia greengrass package`: artifacts (zip + sha256) and recipes with concrete versions.

Output layout is GDK's (`greengrass-build/`): recipes/<name>-<version>.json|yaml and
artifacts/<name>/<version>/<file>, so `gdk component publish` or `vigia greengrass deploy` can take it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greengrass.recipes import AGENT_COMPONENT, MODEL_ARCHIVE, MODEL_COMPONENT, agent_recipe, model_recipe

log = logging.getLogger(__name__)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
ARTIFACT_PLACEHOLDER = "s3://{bucket}/{component}/{version}/{file}"


@dataclass(frozen=True)
class PackagedComponent:
    name: str
    version: str
    recipe_path: Path
    artifact_path: Path
    sha256_hex: str


def sha256_of(path: Path) -> tuple[str, str]:
    """(hex for humans and .sha256 files, base64 for the recipe's Digest)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest(), base64.b64encode(digest.digest()).decode()


def _check_version(version: str) -> str:
    if not _SEMVER.match(version):
        raise ValueError(f"component version {version!r} is not semantic (major.minor.patch)")
    return version


def zip_model(model_dir: Path, out: Path) -> Path:
    """Zip a prepared model folder (IR + manifest.json) with stable member order and timestamps."""
    files = sorted(p for p in model_dir.iterdir() if p.is_file())
    if not any(p.name == "manifest.json" for p in files):
        raise FileNotFoundError(f"{model_dir} has no manifest.json: is it a prepared model?")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return out


def build_wheel(project_root: Path, out_dir: Path) -> Path:
    """The agent artifact: this project as a wheel, installed with the [edge] extra on the device."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(out_dir), str(project_root)], check=True, capture_output=True)
    wheels = sorted(out_dir.glob("vigia-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"no vigia wheel was built in {out_dir}")
    return wheels[-1]


def _write_recipe(recipe: dict[str, Any], recipes_dir: Path) -> Path:
    recipes_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{recipe['ComponentName']}-{recipe['ComponentVersion']}"
    path = recipes_dir / f"{stem}.json"
    path.write_text(json.dumps(recipe, indent=2) + "\n")
    try:
        import yaml

        (recipes_dir / f"{stem}.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    except ImportError:  # YAML is a convenience; JSON is what deploy sends
        pass
    return path


def package(
    model_dir: Path,
    out_dir: Path,
    agent_version: str,
    model_component_version: str,
    bucket: str = "{bucket}",
    agent_wheel: Path | None = None,
    project_root: Path | None = None,
    shadow_manager_requirement: str = ">=2.3.0 <3.0.0",
) -> list[PackagedComponent]:
    """Build both components into `out_dir`; `bucket` goes into artifact URIs (deploy uploads there)."""
    from models.manifest import load_manifest, verify

    _check_version(agent_version)
    _check_version(model_component_version)
    manifest = load_manifest(model_dir)
    if not verify(model_dir, manifest):
        raise ValueError(f"{model_dir}: IR files do not match manifest.json checksums; prepare it again")
    artifacts = out_dir / "artifacts"
    recipes_dir = out_dir / "recipes"

    model_zip = zip_model(model_dir, artifacts / MODEL_COMPONENT / model_component_version / MODEL_ARCHIVE)
    model_hex, model_b64 = sha256_of(model_zip)
    model_zip.with_suffix(".zip.sha256").write_text(f"{model_hex}  {model_zip.name}\n")
    uri = ARTIFACT_PLACEHOLDER.format(bucket=bucket, component=MODEL_COMPONENT, version=model_component_version,
                                      file=model_zip.name)
    model_info = {"model_id": manifest.model_id, "version": manifest.version, "precision": manifest.precision,
                  "ir_sha256": manifest.ir_bin_sha256}
    model_path = _write_recipe(model_recipe(model_component_version, uri, model_b64, model_info), recipes_dir)

    agent_dir = artifacts / AGENT_COMPONENT / agent_version
    if agent_wheel is None:
        agent_wheel = build_wheel(project_root or Path(__file__).resolve().parents[1], agent_dir)
    elif agent_wheel.parent.resolve() != agent_dir.resolve():
        agent_dir.mkdir(parents=True, exist_ok=True)
        agent_wheel = Path(shutil.copy2(agent_wheel, agent_dir / agent_wheel.name))
    agent_hex, agent_b64 = sha256_of(agent_wheel)
    agent_wheel.with_name(agent_wheel.name + ".sha256").write_text(f"{agent_hex}  {agent_wheel.name}\n")
    uri = ARTIFACT_PLACEHOLDER.format(bucket=bucket, component=AGENT_COMPONENT, version=agent_version,
                                      file=agent_wheel.name)
    agent_path = _write_recipe(
        agent_recipe(agent_version, uri, agent_b64, model_component_version, shadow_manager_requirement),
        recipes_dir,
    )
    log.info("greengrass components packaged", extra={"out": str(out_dir), "agent": agent_version,
                                                      "model": model_component_version})
    return [
        PackagedComponent(MODEL_COMPONENT, model_component_version, model_path, model_zip, model_hex),
        PackagedComponent(AGENT_COMPONENT, agent_version, agent_path, agent_wheel, agent_hex),
    ]
