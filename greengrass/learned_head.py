"""The learned head on both sides: a Greengrass component for the gateway, an S3 object for the verifier.

Why a component of its own (`com.vigia.LearnedHead`) rather than a new file in `com.vigia.Model`: the head is
retrained and rolled back on its own cadence while the detector IR (tens of MB) stays the same, so a head
release downloads one small JSON file and a rollback never touches the detector. Its version is the head's
registry semver. The artifact is head.json with its digest in the recipe; the install step checks the sha256
again and copies it to `{work:path}/head.json` (atomically), for a component that depends on it to read
(`HEAD_PATH_ON_DEVICE`, as a dependent component's recipe variable). The gateway's first pass does not read it
today: the head scores the verifier's hypotheses (both ensemble models at every tile scale), which the gateway
does not compute; it is there for a verifier run on the gateway and keeps gateway and cloud on one version.

Deployments merge into the target group's latest deployment: a Greengrass deployment replaces everything
deployed to that thing group before, so sending only the head would remove the agent and the detector.

The verifier side: `learned-heads/<version>/head.json` in the artifact bucket, and two settings for the verifier
(`VIGIA_VERIFIER_LEARNED_HEAD`: local path or s3://bucket/key of head.json; `VIGIA_VERIFIER_LEARNED_HEAD_SHA256`:
its sha256 hex, which the verifier checks before it loads the head).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from greengrass.deploy import DeployOptions, deployment_request
from greengrass.package import ARTIFACT_PLACEHOLDER, PackagedComponent, _check_version, _write_recipe, sha256_of
from greengrass.recipes import RECIPE_FORMAT

log = logging.getLogger(__name__)
HEAD_COMPONENT = "com.vigia.LearnedHead"
HEAD_ARTIFACT = "head.json"
HEAD_PATH_ON_DEVICE = f"{{{HEAD_COMPONENT}:work:path}}/{HEAD_ARTIFACT}"
VERIFIER_PREFIX = "learned-heads"
ENV_HEAD = "VIGIA_VERIFIER_LEARNED_HEAD"
ENV_HEAD_SHA256 = "VIGIA_VERIFIER_LEARNED_HEAD_SHA256"
ENV_MODELS = "VIGIA_VERIFIER_MODELS"

# POSIX sh; values only as "$VAR" inside double quotes (see recipes.py). The nucleus already checked the digest
# when it downloaded; checking again here catches an artifact changed on disk before install.
INSTALL_SCRIPT = """set -eu
umask 077
printf '%s  %s\\n' "$COMPONENT_HEAD_SHA256" "$COMPONENT_HEAD_SRC" | sha256sum -c - >/dev/null
cp "$COMPONENT_HEAD_SRC" "$COMPONENT_HEAD_DIR/head.json.tmp"
mv -f "$COMPONENT_HEAD_DIR/head.json.tmp" "$COMPONENT_HEAD_DIR/head.json"
"""


def head_recipe(version: str, artifact_uri: str, digest_b64: str, sha256_hex: str) -> dict[str, Any]:
    return {
        "RecipeFormatVersion": RECIPE_FORMAT,
        "ComponentName": HEAD_COMPONENT,
        "ComponentVersion": version,
        "ComponentType": "aws.greengrass.generic",
        "ComponentDescription": f"Vigia learned verification head {version} (person vs. hard negatives)",
        "ComponentPublisher": "Vigia",
        "ComponentConfiguration": {"DefaultConfiguration": {"headVersion": version, "headSha256": sha256_hex}},
        "Manifests": [{
            "Platform": {"os": "linux"},
            "Lifecycle": {
                "Setenv": {
                    "COMPONENT_HEAD_SRC": f"{{artifacts:path}}/{HEAD_ARTIFACT}",
                    "COMPONENT_HEAD_DIR": "{work:path}",
                    "COMPONENT_HEAD_SHA256": "{configuration:/headSha256}",
                },
                "install": {"RequiresPrivilege": False, "Timeout": 60, "Script": INSTALL_SCRIPT},
            },
            "Artifacts": [{"URI": artifact_uri, "Digest": digest_b64, "Algorithm": "SHA-256",
                           "Permission": {"Read": "OWNER", "Execute": "NONE"}}],
        }],
    }


def package_head(artifact: Path, version: str, out_dir: Path, bucket: str = "{bucket}") -> PackagedComponent:
    """artifacts/com.vigia.LearnedHead/<version>/head.json (+ .sha256) and its recipe, in GDK's build layout."""
    _check_version(version)
    target = out_dir / "artifacts" / HEAD_COMPONENT / version / HEAD_ARTIFACT
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifact, target)
    hex_digest, b64_digest = sha256_of(target)
    target.with_name(HEAD_ARTIFACT + ".sha256").write_text(f"{hex_digest}  {HEAD_ARTIFACT}\n")
    uri = ARTIFACT_PLACEHOLDER.format(bucket=bucket, component=HEAD_COMPONENT, version=version, file=HEAD_ARTIFACT)
    recipe_path = _write_recipe(head_recipe(version, uri, b64_digest, hex_digest), out_dir / "recipes")
    log.info("head component packaged", extra={"version": version, "recipe": str(recipe_path)})
    return PackagedComponent(HEAD_COMPONENT, version, recipe_path, target, hex_digest)


def publish_head(gg: Any, s3: Any, packaged: PackagedComponent, bucket: str) -> dict[str, Any]:
    """Upload the artifact and create the component version; a version that already exists is reused (the
    canary's version going to the whole fleet, or a rollback)."""
    recipe = json.loads(packaged.recipe_path.read_text())
    key = f"{HEAD_COMPONENT}/{packaged.version}/{HEAD_ARTIFACT}"
    recipe["Manifests"][0]["Artifacts"][0]["URI"] = f"s3://{bucket}/{key}"
    s3.put_object(Bucket=bucket, Key=key, Body=packaged.artifact_path.read_bytes())
    try:
        arn = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]
    except gg.exceptions.ConflictException:
        log.info("head component version exists", extra={"version": packaged.version})
        arn = None
    else:
        from greengrass.deploy import _wait_deployable

        _wait_deployable(gg, arn, 120.0)
    return {"name": HEAD_COMPONENT, "version": packaged.version, "arn": arn}


def verifier_key(version: str) -> str:
    return f"{VERIFIER_PREFIX}/{_check_version(version)}/{HEAD_ARTIFACT}"


def upload_verifier_artifact(s3: Any, artifact: Path, bucket: str, version: str, sha256_hex: str) -> str:
    """head.json to s3://bucket/learned-heads/<version>/head.json (sha256 in its metadata); returns the URI."""
    key = verifier_key(version)
    s3.put_object(Bucket=bucket, Key=key, Body=artifact.read_bytes(), ContentType="application/json",
                  Metadata={"sha256": sha256_hex, "head-version": version})
    uri = f"s3://{bucket}/{key}"
    log.info("verifier head uploaded", extra={"uri": uri, "version": version})
    return uri


def verifier_env(uri: str, sha256_hex: str, ensemble: tuple[str, ...]) -> dict[str, str]:
    """What the verifier's deployment sets so that it loads this head (and refuses any other bytes), with the
    detectors the head was trained on: a head and its ensemble travel, and roll back, together."""
    return {ENV_HEAD: uri, ENV_HEAD_SHA256: sha256_hex, ENV_MODELS: ",".join(ensemble)}


def latest_components(gg: Any, target_arn: str) -> dict[str, Any]:
    """The components of the target's latest deployment ({} when the group has none yet)."""
    found = gg.list_deployments(targetArn=target_arn, historyFilter="LATEST_ONLY").get("deployments", [])
    if not found:
        return {}
    return dict(gg.get_deployment(deploymentId=found[0]["deploymentId"]).get("components") or {})


def head_deployment_request(gg: Any, version: str, options: DeployOptions) -> dict[str, Any]:
    """The group's latest deployment with the head at `version`, under deploy.py's rollback/abort policies."""
    _check_version(version)
    request = deployment_request([{"name": HEAD_COMPONENT, "version": version}], options)
    components = latest_components(gg, options.target_arn)
    components[HEAD_COMPONENT] = {"componentVersion": version}
    request["components"] = components  # deploy.py's ShadowManager entry would clash with the fleet's own
    return request


def deploy_head(gg: Any, version: str, options: DeployOptions) -> dict[str, Any]:
    response = gg.create_deployment(**head_deployment_request(gg, version, options))
    log.info("head deployment created", extra={"deployment_id": response.get("deploymentId"), "version": version,
                                               "target": options.target_arn})
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}
