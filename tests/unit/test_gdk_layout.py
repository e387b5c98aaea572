"""The Greengrass projects follow the GDK CLI's layout: one component project per folder, each with a
gdk-config.json GDK accepts and a recipe.json in GDK's template form that satisfies the Greengrass recipe
schema; the custom build command really writes greengrass-build/ as GDK's publish reads it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from greengrass.gdk_build import COMPONENTS_DIR, source_recipe
from greengrass.recipes import AGENT_COMPONENT, MODEL_COMPONENT
from tests.fake_model import write_fake_prepared_model

ROOT = Path(__file__).parents[2]
COMPONENTS = (MODEL_COMPONENT, AGENT_COMPONENT)
# GDK CLI configuration file (docs: "Greengrass Development Kit CLI configuration file")
GDK_BUILD_SYSTEMS = {"zip", "maven", "gradle", "gradlew", "custom"}
GDK_VERSION = re.compile(r"^(NEXT_PATCH|\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)$")
# Greengrass recipe reference: the top-level keys a recipe may have, and those it must have
RECIPE_KEYS = {"RecipeFormatVersion", "ComponentName", "ComponentVersion", "ComponentDescription",
               "ComponentPublisher", "ComponentConfiguration", "ComponentDependencies", "ComponentType",
               "ComponentSource", "Manifests", "Lifecycle"}
RECIPE_REQUIRED = {"RecipeFormatVersion", "ComponentName", "ComponentVersion"}
ARTIFACT_KEYS = {"URI", "Digest", "Algorithm", "Unarchive", "Permission"}
DEPENDENCY_KEYS = {"VersionRequirement", "DependencyType"}
LIFECYCLE_STEPS = {"Setenv", "bootstrap", "install", "startup", "run", "shutdown", "recover"}
GDK_URI = re.compile(r"^s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/[A-Za-z0-9._-]+$")


def _check_recipe_schema(recipe: dict[str, Any]) -> None:
    assert set(recipe) <= RECIPE_KEYS and set(recipe) >= RECIPE_REQUIRED, set(recipe) ^ RECIPE_KEYS
    assert recipe["RecipeFormatVersion"] == "2020-01-25"
    assert recipe["ComponentType"] in {"aws.greengrass.generic", "aws.greengrass.lambda", "aws.greengrass.plugin",
                                       "aws.greengrass.nucleus"}
    for dependency in recipe.get("ComponentDependencies", {}).values():
        assert set(dependency) <= DEPENDENCY_KEYS and dependency["DependencyType"] in {"HARD", "SOFT"}
    assert recipe["Manifests"]
    for manifest in recipe["Manifests"]:
        assert set(manifest) <= {"Platform", "Lifecycle", "Artifacts", "Selections", "Name"}
        assert set(manifest["Platform"]) <= {"os", "architecture", "architecture.detail"}
        assert set(manifest.get("Lifecycle", {})) <= LIFECYCLE_STEPS
        for artifact in manifest.get("Artifacts", []):
            assert set(artifact) <= ARTIFACT_KEYS, artifact
            assert artifact.get("Unarchive", "NONE") in {"NONE", "ZIP"}


def _check_gdk_template_form(recipe: dict[str, Any]) -> list[str]:
    """GDK's placeholders where GDK fills them; returns the artifact file names."""
    assert (recipe["ComponentName"], recipe["ComponentVersion"], recipe["ComponentPublisher"]) == (
        "{COMPONENT_NAME}", "{COMPONENT_VERSION}", "{COMPONENT_AUTHOR}")
    uris = [a["URI"] for m in recipe["Manifests"] for a in m.get("Artifacts", [])]
    assert uris and all(GDK_URI.match(u) for u in uris), uris
    # no digest in the template: Greengrass computes it from the uploaded artifact, GDK does not
    assert not any("Digest" in a for m in recipe["Manifests"] for a in m.get("Artifacts", []))
    return [u.rsplit("/", 1)[-1] for u in uris]


def test_one_gdk_project_per_component():
    projects = sorted(p.name for p in COMPONENTS_DIR.iterdir() if p.is_dir())
    assert projects == sorted(COMPONENTS)
    assert not (ROOT / "greengrass" / "gdk-config.json").exists()  # GDK publishes one component per project


@pytest.mark.parametrize("component", COMPONENTS)
def test_gdk_config_follows_the_documented_format(component: str):
    config = json.loads((COMPONENTS_DIR / component / "gdk-config.json").read_text())
    assert set(config) == {"component", "gdk_version"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", config["gdk_version"])
    assert list(config["component"]) == [component]  # exactly one component, named as the folder
    settings = config["component"][component]
    assert set(settings) == {"author", "version", "build", "publish"}
    assert GDK_VERSION.match(settings["version"]) and settings["version"] == "NEXT_PATCH"
    assert settings["build"]["build_system"] in GDK_BUILD_SYSTEMS
    assert settings["build"]["build_system"] == "custom"
    assert settings["build"]["custom_build_command"] == ["python3", "-m", "greengrass.gdk_build"]
    assert set(settings["publish"]) >= {"bucket", "region"}


@pytest.mark.parametrize("component", COMPONENTS)
def test_committed_recipe_is_schema_valid_in_gdk_form_and_current(component: str):
    project = COMPONENTS_DIR / component
    assert (project / "recipe.json").exists() and not (project / "recipe.yaml").exists()  # one recipe file
    recipe = json.loads((project / "recipe.json").read_text())
    _check_recipe_schema(recipe)
    _check_gdk_template_form(recipe)
    assert recipe == source_recipe(component)  # regenerated by `python -m greengrass.gdk_build --write-sources`


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_fake_prepared_model(tmp_path / "model" / "FP32", "7", b"\x01" * 32)


def _run_custom_build(component: str, tmp_path: Path, extra_env: dict[str, str]) -> Path:
    """The project copied elsewhere, its custom_build_command run there as GDK runs it (cwd = project)."""
    project = tmp_path / "projects" / component
    shutil.copytree(COMPONENTS_DIR / component, project)
    command = json.loads((project / "gdk-config.json").read_text())["component"][component]["build"][
        "custom_build_command"]
    command = [sys.executable if command[0] == "python3" else command[0], *command[1:]]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return project / "greengrass-build"


def test_model_build_writes_what_gdk_publishes(model_dir: Path, tmp_path: Path):
    out = _run_custom_build(MODEL_COMPONENT, tmp_path, {"VIGIA_GG_MODEL_DIR": str(model_dir)})
    recipe = json.loads((out / "recipes" / "recipe.json").read_text())
    _check_recipe_schema(recipe)
    (archive,) = _check_gdk_template_form(recipe)
    built = out / "artifacts" / MODEL_COMPONENT / "NEXT_PATCH" / archive
    with zipfile.ZipFile(built) as zipped:
        assert sorted(zipped.namelist()) == ["manifest.json", "model.bin", "model.xml"]
    assert recipe["ComponentConfiguration"]["DefaultConfiguration"]["modelVersion"] == "7"  # from the manifest


def test_agent_build_writes_what_gdk_publishes(tmp_path: Path):
    wheel = tmp_path / "vigia-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK prebuilt")
    out = _run_custom_build(AGENT_COMPONENT, tmp_path, {"VIGIA_GG_AGENT_WHEEL": str(wheel)})
    recipe = json.loads((out / "recipes" / "recipe.json").read_text())
    _check_recipe_schema(recipe)
    assert _check_gdk_template_form(recipe) == [wheel.name]
    assert (out / "artifacts" / AGENT_COMPONENT / "NEXT_PATCH" / wheel.name).read_bytes() == b"PK prebuilt"
    assert recipe["ComponentDependencies"][MODEL_COMPONENT]["VersionRequirement"] == ">=1.0.0 <2.0.0"
    assert recipe["Manifests"][0]["Lifecycle"]["Setenv"]["COMPONENT_WHEEL"] == f"{{artifacts:path}}/{wheel.name}"


def test_build_refuses_a_tampered_model(model_dir: Path, tmp_path: Path):
    (model_dir / "model.bin").write_bytes(b"tampered")
    project = tmp_path / "p"
    shutil.copytree(COMPONENTS_DIR / MODEL_COMPONENT, project)
    done = subprocess.run([sys.executable, "-m", "greengrass.gdk_build"], cwd=project, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "VIGIA_GG_MODEL_DIR": str(model_dir)})
    assert done.returncode != 0 and "checksums" in done.stderr
    assert not (project / "greengrass-build" / "recipes" / "recipe.json").exists()
