"""The GDK CLI's custom build for one component project (greengrass/components/<component>/).

`gdk component build` runs this in the project folder (see its gdk-config.json); it writes what GDK's
`publish` reads:

- `greengrass-build/recipes/recipe.json`: the recipe from greengrass/recipes.py in GDK's template form:
  `{COMPONENT_NAME}`/`{COMPONENT_VERSION}`/`{COMPONENT_AUTHOR}` for name, version and publisher, artifact URIs
  `s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/<file>`; GDK fills them when it publishes (NEXT_PATCH
  resolved, the bucket being the configured one with region and account appended). No digest: Greengrass
  computes it from the uploaded artifact.
- `greengrass-build/artifacts/<component>/<version>/<file>`: `<version>` is gdk-config's version as written
  (`NEXT_PATCH` included), the folder GDK's publish uploads from.

Inputs: the model component zips a prepared model (`VIGIA_GG_MODEL_DIR`, default the catalog's gateway
model under VIGIA_MODELS_DIR); the agent builds this project's wheel (`VIGIA_GG_AGENT_WHEEL` names a prebuilt
one instead). `vigia greengrass package/deploy` stays the path that needs no GDK.

`python -m greengrass.gdk_build --write-sources` rewrites the committed recipe.json of each project.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

from greengrass.package import build_wheel, zip_model
from greengrass.recipes import AGENT_COMPONENT, MODEL_ARCHIVE, MODEL_COMPONENT, agent_recipe, model_recipe

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
COMPONENTS_DIR = ROOT / "greengrass" / "components"
GDK_NAME, GDK_VERSION, GDK_AUTHOR = "{COMPONENT_NAME}", "{COMPONENT_VERSION}", "{COMPONENT_AUTHOR}"
BUILD_DIR = "greengrass-build"
# The agent accepts any model 1.x: NEXT_PATCH moves the model's patch number with every publish.
MODEL_REQUIREMENT = ">=1.0.0 <2.0.0"


def gdk_artifact_uri(file_name: str) -> str:
    return f"s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/{file_name}"


def gdk_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """A concrete recipe in GDK's template form (name, version and artifact URIs left for GDK to fill)."""
    templated = copy.deepcopy(recipe)
    templated["ComponentName"], templated["ComponentVersion"] = GDK_NAME, GDK_VERSION
    templated["ComponentPublisher"] = GDK_AUTHOR  # gdk-config's author
    for manifest in templated["Manifests"]:
        manifest["Artifacts"] = [
            {**{k: v for k, v in artifact.items() if k not in ("Digest", "Algorithm")},
             "URI": gdk_artifact_uri(artifact["URI"].rsplit("/", 1)[-1])}
            for artifact in manifest.get("Artifacts", [])
        ]
    return templated


def _project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _model_info(manifest: Any | None) -> dict[str, str]:
    if manifest is None:  # the committed source recipe: filled from the model's manifest at build time
        from models.catalog import GATEWAY_MODEL

        return {"model_id": GATEWAY_MODEL, "version": "", "precision": "FP32", "ir_sha256": ""}
    return {"model_id": manifest.model_id, "version": manifest.version, "precision": manifest.precision,
            "ir_sha256": manifest.ir_bin_sha256}


def source_recipe(component: str) -> dict[str, Any]:
    """What each project commits as recipe.json (GDK needs one, and validates it)."""
    if component == MODEL_COMPONENT:
        recipe = model_recipe(GDK_VERSION, gdk_artifact_uri(MODEL_ARCHIVE), "", _model_info(None))
    elif component == AGENT_COMPONENT:
        wheel = f"vigia-{_project_version()}-py3-none-any.whl"
        recipe = agent_recipe(GDK_VERSION, gdk_artifact_uri(wheel), "", "0.0.0")
        _require_model_range(recipe)
    else:
        raise ValueError(f"unknown component {component!r}: expected {MODEL_COMPONENT} or {AGENT_COMPONENT}")
    return gdk_recipe(recipe)


def _require_model_range(recipe: dict[str, Any]) -> None:
    recipe["ComponentDependencies"][MODEL_COMPONENT]["VersionRequirement"] = MODEL_REQUIREMENT


def read_gdk_config(project: Path) -> tuple[str, str]:
    """(component name, version as written) from the project's gdk-config.json."""
    config = json.loads((project / "gdk-config.json").read_text())
    components = config["component"]
    if len(components) != 1:
        raise ValueError(f"{project}/gdk-config.json must describe exactly one component (GDK publishes one)")
    ((name, settings),) = components.items()
    return name, settings["version"]


def build(project: Path) -> Path:
    """Write greengrass-build/ in `project`; returns the recipe written."""
    from models.manifest import load_manifest, verify

    name, version = read_gdk_config(project)
    out = project / BUILD_DIR
    shutil.rmtree(out, ignore_errors=True)
    artifacts = out / "artifacts" / name / version
    artifacts.mkdir(parents=True)
    if name == MODEL_COMPONENT:
        model_dir = Path(os.environ["VIGIA_GG_MODEL_DIR"]) if os.environ.get("VIGIA_GG_MODEL_DIR") else None
        if model_dir is None:
            from models.catalog import GATEWAY_MODEL
            from models.prepare import find_prepared

            model_dir = find_prepared(GATEWAY_MODEL, "FP32")
        manifest = load_manifest(model_dir)
        if not verify(model_dir, manifest):
            raise ValueError(f"{model_dir}: IR files do not match manifest.json checksums; prepare it again")
        archive = zip_model(model_dir, artifacts / MODEL_ARCHIVE)
        recipe = model_recipe(GDK_VERSION, gdk_artifact_uri(archive.name), "", _model_info(manifest))
    elif name == AGENT_COMPONENT:
        prebuilt = os.environ.get("VIGIA_GG_AGENT_WHEEL")
        wheel = (Path(shutil.copy2(prebuilt, artifacts / Path(prebuilt).name)) if prebuilt
                 else build_wheel(ROOT, artifacts))
        recipe = agent_recipe(GDK_VERSION, gdk_artifact_uri(wheel.name), "", "0.0.0")
        _require_model_range(recipe)
    else:
        raise ValueError(f"unknown component {name!r}: expected {MODEL_COMPONENT} or {AGENT_COMPONENT}")
    recipes = out / "recipes"
    recipes.mkdir()
    path = recipes / "recipe.json"
    path.write_text(json.dumps(gdk_recipe(recipe), indent=2) + "\n")
    log.info("gdk build written", extra={"component": name, "version": version, "out": str(out)})
    return path


def write_sources() -> list[Path]:
    written = []
    for component in (MODEL_COMPONENT, AGENT_COMPONENT):
        path = COMPONENTS_DIR / component / "recipe.json"
        path.write_text(json.dumps(source_recipe(component), indent=2) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GDK custom build of the component project in the current folder")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="component project folder (default: .)")
    parser.add_argument("--write-sources", action="store_true", help="rewrite the committed recipe.json files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if args.write_sources:
        for path in write_sources():
            print(path)
        return 0
    print(build(args.project))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
