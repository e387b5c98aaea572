"""Greengrass v2 component recipes, built as data so that versions, digests and topics are concrete.

Two components, as AWS recommends for ML at the edge: the model (IR zipped, unarchived by the nucleus)
and the agent, which depends on it and on ShadowManager. The agent's `accessControl` grants exactly the
IPC operations it uses, on its own topics and its own named shadow (`{iot:thingName}` is interpolated by
the nucleus; set `interpolateComponentConfiguration: true` on aws.greengrass.Nucleus).
"""

from __future__ import annotations

from typing import Any

from contracts import topics

RECIPE_FORMAT = "2020-01-25"
MODEL_COMPONENT = "com.vigia.Model"
AGENT_COMPONENT = "com.vigia.EdgeAgent"
SHADOW_MANAGER = "aws.greengrass.ShadowManager"
THING = "{iot:thingName}"  # Greengrass recipe variable
MODEL_ARCHIVE = "model.zip"
# the zip holds the IR files and manifest.json at its root; the nucleus unzips an artifact into
# {artifacts:decompressedPath}/<archive name without .zip>/
MODEL_DIR_ON_DEVICE = f"{{{MODEL_COMPONENT}:artifacts:decompressedPath}}/{MODEL_ARCHIVE.removesuffix('.zip')}"


def agent_publish_topics(thing: str = THING) -> list[str]:
    return [topics.candidates(thing, "+"), topics.telemetry(thing), topics.heartbeat(thing)]


def agent_shadow_resource(thing: str = THING) -> str:
    return topics.shadow_prefix(thing, topics.CONFIG_SHADOW_NAME)


def agent_local_subscribe_topics(thing: str = THING) -> list[str]:
    return [topics.shadow_topic(thing, "update/delta")]


def model_recipe(version: str, artifact_uri: str, digest_b64: str, model: dict[str, Any]) -> dict[str, Any]:
    """The model component: no process, just an artifact the nucleus downloads, checks and unzips."""
    return {
        "RecipeFormatVersion": RECIPE_FORMAT,
        "ComponentName": MODEL_COMPONENT,
        "ComponentVersion": version,
        "ComponentType": "aws.greengrass.generic",
        "ComponentDescription": f"Vigia person detector {model['model_id']} {model['version']} "
                                f"({model['precision']}, OpenVINO IR)",
        "ComponentPublisher": "Vigia",
        "ComponentConfiguration": {"DefaultConfiguration": {
            "modelId": model["model_id"], "modelVersion": model["version"], "precision": model["precision"],
            "irSha256": model["ir_sha256"],
        }},
        "Manifests": [{
            "Platform": {"os": "linux"},
            "Lifecycle": {},
            "Artifacts": [{"URI": artifact_uri, "Unarchive": "ZIP", "Digest": digest_b64, "Algorithm": "SHA-256",
                           "Permission": {"Read": "OWNER", "Execute": "NONE"}}],
        }],
    }


def agent_recipe(
    version: str,
    artifact_uri: str,
    digest_b64: str,
    model_version: str,
    shadow_manager_requirement: str = ">=2.3.0 <3.0.0",
) -> dict[str, Any]:
    wheel = artifact_uri.rsplit("/", 1)[-1]
    venv = "{work:path}/venv"
    run = " ".join([
        f"exec {venv}/bin/vigia --log-level {{configuration:/logLevel}} edge run",
        "--thing {iot:thingName}",
        "--gateway-id {iot:thingName}",
        "--source {configuration:/source}",
        "--camera {configuration:/cameraId}",
        "--data-dir {work:path}/data",
        f"--model-dir {MODEL_DIR_ON_DEVICE}",
        "--heartbeat-interval {configuration:/heartbeatIntervalS}",
    ])
    return {
        "RecipeFormatVersion": RECIPE_FORMAT,
        "ComponentName": AGENT_COMPONENT,
        "ComponentVersion": version,
        "ComponentType": "aws.greengrass.generic",
        "ComponentDescription": "Vigia edge agent: person candidates with per-camera filters, config from the "
                                f"`{topics.CONFIG_SHADOW_NAME}` named shadow",
        "ComponentPublisher": "Vigia",
        "ComponentDependencies": {
            MODEL_COMPONENT: {"VersionRequirement": f"={model_version}", "DependencyType": "HARD"},
            SHADOW_MANAGER: {"VersionRequirement": shadow_manager_requirement, "DependencyType": "HARD"},
        },
        "ComponentConfiguration": {"DefaultConfiguration": {
            # component configuration → agent settings (a deployment's configurationUpdate changes them)
            "source": "rtsp://127.0.0.1:8554/cam1",
            "cameraId": "cam1",
            "logLevel": "INFO",
            "heartbeatIntervalS": 60,
            "accessControl": {
                "aws.greengrass.ipc.mqttproxy": {
                    f"{AGENT_COMPONENT}:mqttproxy:1": {
                        "policyDescription": "publish candidates, telemetry and heartbeats of this thing",
                        "operations": ["aws.greengrass#PublishToIoTCore"],
                        "resources": agent_publish_topics(),
                    },
                },
                SHADOW_MANAGER: {
                    f"{AGENT_COMPONENT}:shadow:1": {
                        "policyDescription": "read desired config and write reported state of its named shadow",
                        "operations": ["aws.greengrass#GetThingShadow", "aws.greengrass#UpdateThingShadow"],
                        "resources": [agent_shadow_resource()],
                    },
                },
                "aws.greengrass.ipc.pubsub": {
                    f"{AGENT_COMPONENT}:pubsub:1": {
                        "policyDescription": "receive the config shadow's delta from ShadowManager",
                        "operations": ["aws.greengrass#SubscribeToTopic"],
                        "resources": agent_local_subscribe_topics(),
                    },
                },
            },
        }},
        "Manifests": [{
            "Platform": {"os": "linux"},
            "Lifecycle": {
                "install": {
                    "RequiresPrivilege": False,
                    "Timeout": 900,
                    "Script": f"python3 -m venv {venv} && {venv}/bin/pip install --upgrade pip && "
                              f"{venv}/bin/pip install '{{artifacts:path}}/{wheel}[edge]'",
                },
                "run": {"RequiresPrivilege": False, "Script": run},
            },
            "Artifacts": [{"URI": artifact_uri, "Digest": digest_b64, "Algorithm": "SHA-256"}],
        }],
    }


def shadow_manager_configuration() -> dict[str, Any]:
    """Sync only the config shadow of the core device with IoT Core (ShadowManager syncs nothing by default)."""
    return {"synchronize": {"coreThing": {"classic": False, "namedShadows": [topics.CONFIG_SHADOW_NAME]},
                            "direction": "betweenDeviceAndCloud"}}
