"""`vigia greengrass deploy`: upload artifacts, register component versions, deploy to a thing group.

The deployment rolls back on failure (deploymentPolicies.failureHandlingPolicy = ROLLBACK) and the IoT
job behind it aborts when too many devices fail, so a bad release stops spreading by itself.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greengrass.recipes import AGENT_COMPONENT, MODEL_COMPONENT, SHADOW_MANAGER, shadow_manager_configuration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployOptions:
    bucket: str
    target_arn: str  # arn:aws:iot:<region>:<account>:thinggroup/<name>
    deployment_name: str = "vigia"
    shadow_manager_version: str = "2.3.9"
    abort_failure_percent: float = 10.0
    min_executed_things: int = 1
    rollout_per_minute: int = 50
    in_progress_timeout_min: int = 60
    agent_configuration: dict[str, Any] | None = None  # merged into the agent component's configuration


def load_recipes(recipes_dir: Path, names: tuple[str, ...] = (MODEL_COMPONENT, AGENT_COMPONENT)) -> list[dict]:
    """The newest packaged recipe of each component, model first (the agent depends on it)."""
    recipes = []
    for name in names:
        found = sorted(recipes_dir.glob(f"{name}-*.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"no recipe for {name} in {recipes_dir}: run `vigia greengrass package`")
        recipes.append(json.loads(found[-1].read_text()))
    return recipes


def _artifact_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def publish_components(gg: Any, s3: Any, out_dir: Path, bucket: str, wait_s: float = 120.0) -> list[dict]:
    """Upload each artifact to `bucket` and create the component version from its inline recipe."""
    created = []
    for recipe in load_recipes(out_dir / "recipes"):
        name, version = recipe["ComponentName"], recipe["ComponentVersion"]
        for manifest in recipe["Manifests"]:
            for artifact in manifest.get("Artifacts", []):
                _, key = _artifact_key(artifact["URI"])
                artifact["URI"] = f"s3://{bucket}/{key}"
                local = out_dir / "artifacts" / name / version / key.rsplit("/", 1)[-1]
                s3.put_object(Bucket=bucket, Key=key, Body=local.read_bytes())
                log.info("artifact uploaded", extra={"component": name, "uri": artifact["URI"]})
        response = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())
        _wait_deployable(gg, response["arn"], wait_s)
        log.info("component version created", extra={"component": name, "version": version,
                                                      "arn": response["arn"]})
        created.append({"name": name, "version": version, "arn": response["arn"]})
    return created


def _wait_deployable(gg: Any, arn: str, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        state = gg.describe_component(arn=arn)["status"]["componentState"]
        if state == "DEPLOYABLE":
            return
        if state == "FAILED" or time.monotonic() > deadline:
            raise RuntimeError(f"component {arn} is {state}, not deployable")
        time.sleep(2)


def deployment_request(components: list[dict], options: DeployOptions) -> dict[str, Any]:
    spec: dict[str, Any] = {c["name"]: {"componentVersion": c["version"]} for c in components}
    spec[SHADOW_MANAGER] = {
        "componentVersion": options.shadow_manager_version,
        "configurationUpdate": {"merge": json.dumps(shadow_manager_configuration())},
    }
    if options.agent_configuration and AGENT_COMPONENT in spec:
        spec[AGENT_COMPONENT]["configurationUpdate"] = {"merge": json.dumps(options.agent_configuration)}
    return {
        "targetArn": options.target_arn,
        "deploymentName": options.deployment_name,
        "components": spec,
        "deploymentPolicies": {
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {"timeoutInSeconds": 120, "action": "NOTIFY_COMPONENTS"},
            "configurationValidationPolicy": {"timeoutInSeconds": 60},
        },
        "iotJobConfiguration": {
            "jobExecutionsRolloutConfig": {"maximumPerMinute": options.rollout_per_minute},
            "abortConfig": {"criteriaList": [
                {"failureType": failure, "action": "CANCEL",
                 "thresholdPercentage": options.abort_failure_percent,
                 "minNumberOfExecutedThings": options.min_executed_things}
                for failure in ("FAILED", "TIMED_OUT")
            ]},
            "timeoutConfig": {"inProgressTimeoutInMinutes": options.in_progress_timeout_min},
        },
    }


def deploy(gg: Any, s3: Any, out_dir: Path, options: DeployOptions, wait_s: float = 120.0) -> dict[str, Any]:
    components = publish_components(gg, s3, out_dir, options.bucket, wait_s)
    response = gg.create_deployment(**deployment_request(components, options))
    log.info("deployment created", extra={"deployment_id": response.get("deploymentId"),
                                          "target": options.target_arn})
    return {"components": components, **{k: v for k, v in response.items() if k != "ResponseMetadata"}}
