"""Greengrass components: recipes are valid and least-privilege, packaging is reproducible, and the
deployment requests pass botocore's checks against the real greengrassv2/s3 API models (Stubber).
(The GDK projects and their custom build: test_gdk_layout.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber

from contracts import topics
from greengrass.deploy import DeployOptions, deploy, deployment_request
from greengrass.package import package
from greengrass.recipes import AGENT_COMPONENT, MODEL_COMPONENT, SHADOW_MANAGER
from tests.fake_model import write_fake_prepared_model

_RECIPE_VARIABLE = re.compile(r"\{[A-Za-z0-9.]+(?::[^{}\s]+)+\}")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A prepared-model folder as models.prepare writes it (tiny fake IR, real manifest + checksums)."""
    return write_fake_prepared_model(tmp_path / "ssd" / "1" / "FP32", "1", b"\x00" * 64)


@pytest.fixture
def built(model_dir: Path, tmp_path: Path):
    wheel = tmp_path / "vigia-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK fake wheel")
    out = tmp_path / "greengrass-build"
    return out, package(model_dir, out, "0.1.0", "1.0.0", bucket="my-bucket", agent_wheel=wheel)


def test_package_writes_artifacts_checksums_and_recipes(built, model_dir):
    out, comps = built
    model, agent = comps
    assert (model.name, model.version, agent.name, agent.version) == (MODEL_COMPONENT, "1.0.0", AGENT_COMPONENT,
                                                                       "0.1.0")
    with zipfile.ZipFile(model.artifact_path) as archive:
        assert sorted(archive.namelist()) == ["manifest.json", "model.bin", "model.xml"]
    for comp in comps:
        recipe = json.loads(comp.recipe_path.read_text())
        assert yaml.safe_load(comp.recipe_path.with_suffix(".yaml").read_text()) == recipe
        artifact = recipe["Manifests"][0]["Artifacts"][0]
        digest = base64.b64encode(hashlib.sha256(comp.artifact_path.read_bytes()).digest()).decode()
        assert artifact["Digest"] == digest and artifact["Algorithm"] == "SHA-256"
        assert artifact["URI"] == f"s3://my-bucket/{comp.name}/{comp.version}/{comp.artifact_path.name}"
        sidecar = comp.artifact_path.with_name(comp.artifact_path.name + ".sha256").read_text()
        assert sidecar.split()[0] == comp.sha256_hex
        assert recipe["ComponentVersion"] == comp.version and "{" not in recipe["ComponentVersion"]
    # reproducible: packaging again gives the same model archive
    first = model.artifact_path.read_bytes()
    package(model_dir, out, "0.1.0", "1.0.0", bucket="my-bucket", agent_wheel=agent.artifact_path)
    assert model.artifact_path.read_bytes() == first


def test_model_recipe_unarchives_the_ir(built):
    recipe = json.loads(built[1][0].recipe_path.read_text())
    assert recipe["Manifests"][0]["Artifacts"][0]["Unarchive"] == "ZIP"
    assert recipe["ComponentConfiguration"]["DefaultConfiguration"]["modelId"] == "ssd-mobilenet-v2-coco"


def test_agent_recipe_dependencies_lifecycle_and_access_control(built):
    recipe = json.loads(built[1][1].recipe_path.read_text())
    deps = recipe["ComponentDependencies"]
    assert deps[MODEL_COMPONENT] == {"VersionRequirement": "=1.0.0", "DependencyType": "HARD"}
    assert deps[SHADOW_MANAGER]["DependencyType"] == "HARD"
    lifecycle = recipe["Manifests"][0]["Lifecycle"]
    env = lifecycle["Setenv"]
    assert env["COMPONENT_WHEEL"] == "{artifacts:path}/vigia-0.1.0-py3-none-any.whl"
    assert env["COMPONENT_MODEL_DIR"] == "{com.vigia.Model:artifacts:decompressedPath}/model"
    assert env["COMPONENT_THING"] == "{iot:thingName}"
    defaults = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    for key in ("gateway", "source", "cameraId", "logLevel", "heartbeatIntervalS", "watchS"):
        assert f"{{configuration:/{key}}}" in env.values() and key in defaults
    # every value travels in the environment: the scripts hold no recipe variable to paste into a shell
    for step in ("install", "run"):
        assert not _RECIPE_VARIABLE.search(lifecycle[step]["Script"]), step

    acl = recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
    assert set(acl) == {"aws.greengrass.ipc.mqttproxy", SHADOW_MANAGER, "aws.greengrass.ipc.pubsub"}
    (mqtt,) = acl["aws.greengrass.ipc.mqttproxy"].values()
    assert mqtt["operations"] == ["aws.greengrass#PublishToIoTCore"]  # no subscribe: nothing to receive
    thing = "gw1"
    concrete = {r.replace("{iot:thingName}", thing) for r in mqtt["resources"]}
    assert concrete == {topics.candidates(thing, "+"), topics.telemetry(thing), topics.heartbeat(thing)}
    (shadow,) = acl[SHADOW_MANAGER].values()
    assert sorted(shadow["operations"]) == ["aws.greengrass#GetThingShadow", "aws.greengrass#UpdateThingShadow"]
    assert [r.replace("{iot:thingName}", thing) for r in shadow["resources"]] == [topics.shadow_prefix(thing)]
    (pubsub,) = acl["aws.greengrass.ipc.pubsub"].values()
    assert pubsub["operations"] == ["aws.greengrass#SubscribeToTopic"]
    assert [r.replace("{iot:thingName}", thing) for r in pubsub["resources"]] == [
        topics.shadow_topic(thing, "update/delta")]
    for policies in acl.values():
        for policy in policies.values():
            assert "*" not in policy["resources"] and all("#" not in r for r in policy["resources"])


def test_bad_versions_and_tampered_model_are_refused(model_dir, tmp_path):
    wheel = tmp_path / "vigia-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"x")
    with pytest.raises(ValueError, match="semantic"):
        package(model_dir, tmp_path / "o", "v1", "1.0.0", agent_wheel=wheel)
    (model_dir / "model.bin").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="checksums"):
        package(model_dir, tmp_path / "o", "0.1.0", "1.0.0", agent_wheel=wheel)


def test_deploy_requests_match_the_real_api_models(built):
    out, comps = built
    gg = boto3.client("greengrassv2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    target = "arn:aws:iot:eu-west-1:123456789012:thinggroup/vigia-gateways"
    with Stubber(gg) as gg_stub, Stubber(s3) as s3_stub:
        for comp in comps:
            key = f"{comp.name}/{comp.version}/{comp.artifact_path.name}"
            s3_stub.add_response("put_object", {}, {"Bucket": "prod-artifacts", "Key": key, "Body": ANY})
            arn = f"arn:aws:greengrass:eu-west-1:123456789012:components:{comp.name}:versions:{comp.version}"
            gg_stub.add_response("create_component_version",
                                 {"componentName": comp.name, "componentVersion": comp.version, "arn": arn,
                                  "creationTimestamp": datetime.now(UTC),
                                  "status": {"componentState": "REQUESTED"}},
                                 {"inlineRecipe": ANY})
            gg_stub.add_response("describe_component", {"arn": arn, "status": {"componentState": "DEPLOYABLE"}},
                                 {"arn": arn})
        options = DeployOptions(bucket="prod-artifacts", target_arn=target, agent_configuration={"cameraId": "c7"})
        expected = deployment_request([{"name": c.name, "version": c.version} for c in comps], options)
        gg_stub.add_response("create_deployment", {"deploymentId": "d-1", "iotJobId": "j-1"}, expected)
        result = deploy(gg, s3, out, options)
        gg_stub.assert_no_pending_responses()
        s3_stub.assert_no_pending_responses()
    assert result["deploymentId"] == "d-1"
    assert expected["deploymentPolicies"]["failureHandlingPolicy"] == "ROLLBACK"
    criteria = expected["iotJobConfiguration"]["abortConfig"]["criteriaList"]
    assert {c["failureType"] for c in criteria} == {"FAILED", "TIMED_OUT"} and all(c["action"] == "CANCEL"
                                                                                    for c in criteria)
    assert json.loads(expected["components"][SHADOW_MANAGER]["configurationUpdate"]["merge"])[
        "synchronize"]["coreThing"]["namedShadows"] == [topics.CONFIG_SHADOW_NAME]
    assert expected["components"][MODEL_COMPONENT] == {"componentVersion": "1.0.0"}


def test_uploaded_recipe_points_at_the_deploy_bucket(built):
    out, _ = built
    gg = boto3.client("greengrassv2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    sent = []
    gg.meta.events.register("before-parameter-build.greengrassv2.CreateComponentVersion",
                            lambda params, **_: sent.append(json.loads(params["inlineRecipe"])))
    with Stubber(gg) as gg_stub, Stubber(s3) as s3_stub:
        for name in (MODEL_COMPONENT, AGENT_COMPONENT):
            s3_stub.add_response("put_object", {})
            arn = f"arn:aws:greengrass:eu-west-1:123456789012:components:{name}:versions:1.0.0"
            gg_stub.add_response("create_component_version", {"componentName": name, "componentVersion": "1.0.0",
                                                              "arn": arn, "creationTimestamp": datetime.now(UTC),
                                                              "status": {"componentState": "REQUESTED"}})
            gg_stub.add_response("describe_component", {"arn": arn, "status": {"componentState": "DEPLOYABLE"}})
        from greengrass.deploy import publish_components

        publish_components(gg, s3, out, "prod-artifacts")
    assert all(r["Manifests"][0]["Artifacts"][0]["URI"].startswith("s3://prod-artifacts/") for r in sent)


# -- the run script on a device: values with shell metacharacters reach vigia exactly ----------------------

NASTY_URL = "rtsp://admin:p&ss$word;\"q\" 'x' $(touch pwned) `touch pwned2`@10.0.0.5:554/Streaming/101?a=1&b=2"


def _interpolate(value: Any, variables: dict[str, str], configuration: dict[str, Any]) -> Any:
    """What the nucleus does to the lifecycle: recipe variables replaced in every string (an object-valued
    configuration key as its JSON text, a number as its text)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, variables, configuration) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        name = match.group(0)[1:-1]
        if name.startswith("configuration:/"):
            found = configuration[name.removeprefix("configuration:/")]
            return found if isinstance(found, str) else json.dumps(found)
        return variables[name]

    return _RECIPE_VARIABLE.sub(one, value)


def _run_on_device(recipe: dict, configuration: dict[str, Any], root: Path, shell: str) -> tuple[list[str], Path]:
    """Run the agent's run script as the nucleus would, with a stub `vigia` that prints its argv as JSON."""
    work = root / "work dir"  # a space in the nucleus's own paths must not matter either
    variables = {"iot:thingName": "gw-1", "work:path": str(work), "artifacts:path": str(root / "artifacts"),
                 "com.vigia.Model:artifacts:decompressedPath": str(root / "model component")}
    config = {**recipe["ComponentConfiguration"]["DefaultConfiguration"], **configuration}
    lifecycle = _interpolate(recipe["Manifests"][0]["Lifecycle"], variables, config)
    stub = work / "venv" / "bin" / "vigia"
    stub.parent.mkdir(parents=True)
    stub.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    stub.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(root), **lifecycle["Setenv"]}
    done = subprocess.run([shell, "-c", lifecycle["run"]["Script"]], env=env, cwd=root, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert not (root / "pwned").exists() and not (root / "pwned2").exists()
    return json.loads(done.stdout), work / "data"


def _shells() -> list[str]:
    return [s for s in ("bash", "sh") if shutil.which(s)]


@pytest.mark.parametrize("shell", _shells())
def test_run_script_passes_a_single_source_exactly(built, tmp_path: Path, shell: str) -> None:
    recipe = json.loads(built[1][1].recipe_path.read_text())
    argv, data = _run_on_device(recipe, {"source": NASTY_URL, "cameraId": "door 1; echo $HOME",
                                         "logLevel": "DEBUG", "heartbeatIntervalS": 30, "watchS": 5},
                                 tmp_path, shell)
    assert argv == ["--log-level=DEBUG", "edge", "run", "--thing=gw-1", "--gateway-id=gw-1",
                    f"--data-dir={data}", f"--model-dir={tmp_path / 'model component' / 'model'}",
                    "--heartbeat-interval=30", "--watch=5", "--camera=door 1; echo $HOME", f"--source={NASTY_URL}"]


@pytest.mark.parametrize("shell", _shells())
def test_run_script_writes_the_gateway_file_exactly_and_owner_only(built, tmp_path: Path, shell: str) -> None:
    recipe = json.loads(built[1][1].recipe_path.read_text())
    gateway = {"sources": {"cam1": NASTY_URL, "cam2": "rtsp://u:a b'c\"d\\e@h/2"},
               "cameras": {"cam1": {"threshold": 0.6}}}
    argv, data = _run_on_device(recipe, {"gateway": gateway}, tmp_path, shell)
    written = data / "gateway.json"
    assert argv[-1] == f"--config={written}" and not any(a.startswith("--source") for a in argv)
    assert json.loads(written.read_text()) == gateway
    assert written.stat().st_mode & 0o077 == 0


def test_an_empty_gateway_falls_back_to_the_single_source(built, tmp_path: Path) -> None:
    recipe = json.loads(built[1][1].recipe_path.read_text())
    argv, data = _run_on_device(recipe, {"gateway": {}, "cameraId": ""}, tmp_path, "bash")
    assert argv[-1] == "--source=rtsp://127.0.0.1:8554/cam1"
    assert not any(a.startswith(("--camera", "--config")) for a in argv)
    assert not (data / "gateway.json").exists()
