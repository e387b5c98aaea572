"""Packaging and rollout of the learned head: the component recipe and its install step on a device, canary then
fleet deployments, the verifier's artifact in S3, and rollback.

The Greengrass control plane has no local stand-in: it is faked at the wire boundary with botocore's Stubber,
which checks every request against the real greengrassv2 API model. S3 is a real moto server on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.stub import ANY, Stubber

from greengrass.learned_head import (
    ENV_HEAD,
    ENV_HEAD_SHA256,
    ENV_MODELS,
    HEAD_COMPONENT,
    package_head,
)
from greengrass.recipes import AGENT_COMPONENT, MODEL_COMPONENT, SHADOW_MANAGER
from models.learned.gate import GateResult
from models.learned.head import LearnedHead
from models.learned.registry import Registry, RegistryError
from vigia.commands.models_cmd import rollback_head, rollout_head

BUCKET = "vigia-artifacts"
CANARY = "arn:aws:iot:eu-west-1:123456789012:thinggroup/vigia-canary"
FLEET = "arn:aws:iot:eu-west-1:123456789012:thinggroup/vigia-gateways"
PASSED = GateResult(passed=True, reasons=["better"], deltas={})


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str):
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/moto-api/reset", method="POST")).read()
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def gg():
    return boto3.client("greengrassv2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


TWO = ("ssd-mobilenet-v2-coco", "ssdlite-person")
THREE = (*TWO, "nanodet-m")


def _version(registry: Registry, tmp_path: Path, weight: int, gated: bool = True) -> str:
    """A head artifact; from version 2 on, trained on the three-model ensemble."""
    head = tmp_path / f"head-{weight}.json"
    features = [f"{m}_score" for m in (TWO if weight < 2 else THREE)]
    n = len(features)
    LearnedHead("embedder-x", features, np.zeros(n), np.ones(n), np.full(n, float(weight)), 0.0).save(head)
    entry = registry.register(head, dataset_sha256="e" * 64, metrics={}, seed=0, config={})
    if gated:
        registry.record_gate(entry.version, PASSED, tmp_path / "gate.json")
    return entry.version


def _arn(version: str) -> str:
    return f"arn:aws:greengrass:eu-west-1:123456789012:components:{HEAD_COMPONENT}:versions:{version}"


def _stub_publish(stub: Stubber, version: str) -> None:
    stub.add_response("create_component_version", {
        "componentName": HEAD_COMPONENT, "componentVersion": version, "arn": _arn(version),
        "creationTimestamp": datetime.now(UTC), "status": {"componentState": "REQUESTED"}}, {"inlineRecipe": ANY})
    stub.add_response("describe_component", {"arn": _arn(version), "status": {"componentState": "DEPLOYABLE"}},
                      {"arn": _arn(version)})


def _stub_latest(stub: Stubber, target: str, components: dict | None) -> None:
    found = [] if components is None else [{"deploymentId": "old", "targetArn": target}]
    stub.add_response("list_deployments", {"deployments": found},
                      {"targetArn": target, "historyFilter": "LATEST_ONLY"})
    if components is not None:
        stub.add_response("get_deployment", {"deploymentId": "old", "components": components},
                          {"deploymentId": "old"})


def _expect_deployment(stub: Stubber, target: str, components: dict) -> None:
    stub.add_response("create_deployment", {"deploymentId": f"d-{target[-6:]}"}, {
        "targetArn": target, "deploymentName": ANY, "components": components,
        "deploymentPolicies": ANY, "iotJobConfiguration": ANY})


FLEET_COMPONENTS = {
    MODEL_COMPONENT: {"componentVersion": "1.0.0"},
    AGENT_COMPONENT: {"componentVersion": "0.3.0", "configurationUpdate": {"merge": '{"cameraId": "c1"}'}},
    SHADOW_MANAGER: {"componentVersion": "2.3.9"},
}


def test_head_recipe_and_install_on_a_device(tmp_path):
    head = tmp_path / "head.json"
    head.write_text('{"threshold": 0.42}')
    comp = package_head(head, "1.2.0", tmp_path / "build", bucket="b")
    recipe = json.loads(comp.recipe_path.read_text())
    assert (recipe["ComponentName"], recipe["ComponentVersion"]) == (HEAD_COMPONENT, "1.2.0")
    (artifact,) = recipe["Manifests"][0]["Artifacts"]
    assert artifact["URI"] == f"s3://b/{HEAD_COMPONENT}/1.2.0/head.json"
    assert artifact["Digest"] == base64.b64encode(hashlib.sha256(head.read_bytes()).digest()).decode()
    assert recipe["ComponentConfiguration"]["DefaultConfiguration"]["headSha256"] == comp.sha256_hex
    with pytest.raises(ValueError, match="semantic"):
        package_head(head, "v2", tmp_path / "build")

    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum (coreutils) is not on this machine")
    # what the nucleus does: recipe variables into the environment, then `sh -c` the install script
    lifecycle = recipe["Manifests"][0]["Lifecycle"]
    artifacts, work = tmp_path / "device" / "artifacts", tmp_path / "device" / "work"
    artifacts.mkdir(parents=True)
    work.mkdir()
    shutil.copy(comp.artifact_path, artifacts / "head.json")
    values = {"{artifacts:path}": str(artifacts), "{work:path}": str(work),
              "{configuration:/headSha256}": comp.sha256_hex}
    env = {}
    for name, value in lifecycle["Setenv"].items():
        for variable, concrete in values.items():
            value = value.replace(variable, concrete)
        env[name] = value
    script = lifecycle["install"]["Script"]
    subprocess.run(["sh", "-c", script], env={**os.environ, **env}, cwd=work, check=True)
    assert (work / "head.json").read_bytes() == head.read_bytes()
    (artifacts / "head.json").write_text('{"threshold": 0.0}')  # changed on disk after download
    assert subprocess.run(["sh", "-c", script], env={**os.environ, **env}, cwd=work,
                          capture_output=True).returncode != 0
    assert (work / "head.json").read_bytes() == head.read_bytes()


def test_canary_then_all_then_rollback(tmp_path, gg, s3):
    registry = Registry(tmp_path / "registry")
    v1 = _version(registry, tmp_path, 1)
    registry.promote(v1, "all", skip_canary=True)
    v2 = _version(registry, tmp_path, 2)
    out = tmp_path / "rollout"
    with Stubber(gg) as stub:
        # canary: the head alone into the canary group (its gateways run the fleet's agent from the fleet group)
        _stub_publish(stub, v2)
        _stub_latest(stub, CANARY, None)
        _expect_deployment(stub, CANARY, {HEAD_COMPONENT: {"componentVersion": v2}})
        result = rollout_head(registry, gg, s3, version=v2, stage="canary", target_arn=CANARY, bucket=BUCKET,
                              out_dir=out)
        stub.assert_no_pending_responses()
    assert registry.canary().version == v2 and registry.in_service().version == v1
    assert result["deployment"]["deploymentId"] == "d-canary"

    # the verifier's artifact: in S3 under learned-heads/<version>/, and the settings that point at it
    body = s3.get_object(Bucket=BUCKET, Key=f"learned-heads/{v2}/head.json")
    data = body["Body"].read()
    sha = hashlib.sha256(data).hexdigest()
    assert data == registry.artifact_path(v2).read_bytes() and body["Metadata"]["sha256"] == sha
    env = json.loads((out / "verifier-env-canary.json").read_text())
    assert env == {ENV_HEAD: f"s3://{BUCKET}/learned-heads/{v2}/head.json", ENV_HEAD_SHA256: sha,
                   ENV_MODELS: ",".join(THREE)}  # the ensemble v2 was trained on travels with it
    component = s3.get_object(Bucket=BUCKET, Key=f"{HEAD_COMPONENT}/{v2}/head.json")["Body"].read()
    assert component == data

    with Stubber(gg) as stub:
        # all: the version exists already (Conflict is reused); merged into the fleet's latest deployment
        stub.add_client_error("create_component_version", "ConflictException", http_status_code=409)
        _stub_latest(stub, FLEET, {**FLEET_COMPONENTS, HEAD_COMPONENT: {"componentVersion": v1}})
        _expect_deployment(stub, FLEET, {**FLEET_COMPONENTS, HEAD_COMPONENT: {"componentVersion": v2}})
        rollout_head(registry, gg, s3, version=v2, stage="all", target_arn=FLEET, bucket=BUCKET, out_dir=out)
        stub.assert_no_pending_responses()
    assert registry.in_service().version == v2 and registry.canary() is None
    assert registry.get(v1).status == "retired"

    with Stubber(gg) as stub:
        # rollback: the previous in-service version back on the fleet, nothing published
        _stub_latest(stub, FLEET, {**FLEET_COMPONENTS, HEAD_COMPONENT: {"componentVersion": v2}})
        _expect_deployment(stub, FLEET, {**FLEET_COMPONENTS, HEAD_COMPONENT: {"componentVersion": v1}})
        back = rollback_head(registry, gg, target_arns=[FLEET], bucket=BUCKET, out_dir=out)
        stub.assert_no_pending_responses()
    assert back["version"] == v1 and registry.in_service().version == v1
    assert registry.get(v2).status == "rejected" and registry.verify() == []
    env = json.loads((out / "verifier-env-all.json").read_text())
    assert env[ENV_HEAD].endswith(f"/learned-heads/{v1}/head.json")
    assert env[ENV_HEAD_SHA256] == registry.get(v1).artifact_sha256
    assert env[ENV_MODELS] == ",".join(TWO)  # and the ensemble rolls back with the head


def test_refused_rollouts_touch_nothing(tmp_path, gg, s3):
    registry = Registry(tmp_path / "registry")
    ungated = _version(registry, tmp_path, 1, gated=False)
    gated = _version(registry, tmp_path, 2)
    with Stubber(gg):  # no responses queued: any Greengrass call would fail the test
        with pytest.raises(RegistryError, match="gate"):
            rollout_head(registry, gg, s3, version=ungated, stage="canary", target_arn=CANARY, bucket=BUCKET,
                         out_dir=tmp_path / "o")
        with pytest.raises(RegistryError, match="canary first"):
            rollout_head(registry, gg, s3, version=gated, stage="all", target_arn=FLEET, bucket=BUCKET,
                         out_dir=tmp_path / "o")
        with pytest.raises(RegistryError, match="nothing is in service"):
            rollback_head(registry, gg, target_arns=[FLEET], bucket=BUCKET, out_dir=tmp_path / "o")
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert registry.canary() is None and registry.in_service() is None


def test_failed_deployment_promotes_nothing(tmp_path, gg, s3):
    registry = Registry(tmp_path / "registry")
    version = _version(registry, tmp_path, 1)
    with Stubber(gg) as stub:
        _stub_publish(stub, version)
        _stub_latest(stub, CANARY, None)
        stub.add_client_error("create_deployment", "ValidationException", http_status_code=400)
        with pytest.raises(gg.exceptions.ValidationException):
            rollout_head(registry, gg, s3, version=version, stage="canary", target_arn=CANARY, bucket=BUCKET,
                         out_dir=tmp_path / "o")
    assert registry.get(version).status == "candidate" and registry.canary() is None


def test_cli_rollout_needs_the_group_of_its_stage(tmp_path, capsys):
    from vigia.cli import main

    args = ["models", "rollout", "--version", "1.0.0", "--bucket", BUCKET, "--registry", str(tmp_path)]
    assert main([*args, "--stage", "canary", "--target-arn", FLEET]) == 2
    assert "--stage canary needs --canary-group-arn" in capsys.readouterr().err
    assert main([*args, "--stage", "all", "--canary-group-arn", CANARY]) == 2
    assert "--stage all needs --target-arn" in capsys.readouterr().err
