"""Greengrass v2 component recipes, built as data so that versions, digests and topics are concrete.

Two components, as AWS recommends for ML at the edge: the model (IR zipped, unarchived by the nucleus)
and the agent, which depends on it and on ShadowManager. The agent's `accessControl` grants exactly the
IPC operations it uses, on its own topics and its own named shadow (`{iot:thingName}` is interpolated by
the nucleus; set `interpolateComponentConfiguration: true` on aws.greengrass.Nucleus).

The agent's configuration keys (a deployment's `configurationUpdate.merge` sets them):

- `gateway`: the gateway file, as an object: the cameras and their sources, as `vigia edge run --config`
  reads it (`{"sources": {"cam1": "rtsp://…"}, "cameras": {…}}`). When it is not empty it describes the
  gateway and `source`/`cameraId` are not used.
- `source`, `cameraId`: one camera (file, folder or RTSP URL), when `gateway` is empty (`{}`).
- `logLevel`, `heartbeatIntervalS`.
- `watchS`: how often a folder source is polled for new clips. The component is a service: it watches
  folders and follows streams until stopped, and the nucleus restarts it if it fails.

No value ever reaches a shell parser: the nucleus interpolates values into the lifecycle's `Setenv`
(environment variables, set without a shell), and the scripts only expand them inside double quotes
(`"--source=$COMPONENT_SOURCE"`), so `&`, `$`, `;`, quotes and spaces in an RTSP password stay data.
The gateway object reaches the device as its JSON text and is written, owner-only, to
`{work:path}/data/gateway.json`.
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


# Recipe variables the nucleus interpolates into the environment of the lifecycle scripts. Names carry a
# COMPONENT_ prefix so that no VIGIA_* setting of the application picks them up by accident.
def agent_environment(wheel: str) -> dict[str, str]:
    return {
        "COMPONENT_VENV": "{work:path}/venv",
        "COMPONENT_WHEEL": f"{{artifacts:path}}/{wheel}",
        "COMPONENT_DATA_DIR": "{work:path}/data",
        "COMPONENT_MODEL_DIR": MODEL_DIR_ON_DEVICE,
        "COMPONENT_THING": THING,
        "COMPONENT_GATEWAY_JSON": "{configuration:/gateway}",
        "COMPONENT_SOURCE": "{configuration:/source}",
        "COMPONENT_CAMERA_ID": "{configuration:/cameraId}",
        "COMPONENT_LOG_LEVEL": "{configuration:/logLevel}",
        "COMPONENT_HEARTBEAT_S": "{configuration:/heartbeatIntervalS}",
        "COMPONENT_WATCH_S": "{configuration:/watchS}",
        # glibc's per-thread malloc arenas fragment under a dozen camera, decoder and encoder threads: the soak
        # run's memory grew ~100 MiB a day with the default and stayed flat with 2 (benchmarks/results).
        "MALLOC_ARENA_MAX": "2",
    }


# POSIX sh (the nucleus runs scripts with `sh -c`). Values only ever appear as "$VAR" inside double quotes,
# and options are passed as --name=value so that a value starting with '-' is not read as an option.
INSTALL_SCRIPT = """set -eu
python3 -m venv "$COMPONENT_VENV"
"$COMPONENT_VENV/bin/pip" install --upgrade pip
"$COMPONENT_VENV/bin/pip" install "$COMPONENT_WHEEL[edge]"
"""

RUN_SCRIPT = """set -eu
umask 077
mkdir -p "$COMPONENT_DATA_DIR"
export PATH="$COMPONENT_VENV/bin:$PATH"
set -- "--log-level=$COMPONENT_LOG_LEVEL" edge run "--thing=$COMPONENT_THING" "--gateway-id=$COMPONENT_THING" \\
  "--data-dir=$COMPONENT_DATA_DIR" "--model-dir=$COMPONENT_MODEL_DIR" "--heartbeat-interval=$COMPONENT_HEARTBEAT_S" \\
  "--watch=$COMPONENT_WATCH_S"
gateway=$(printf '%s' "$COMPONENT_GATEWAY_JSON" | tr -d ' \\t\\r\\n')
if [ -n "$gateway" ] && [ "$gateway" != "{}" ]; then
  file="$COMPONENT_DATA_DIR/gateway.json"
  printf '%s\\n' "$COMPONENT_GATEWAY_JSON" > "$file.tmp"
  mv -f "$file.tmp" "$file"
  exec vigia "$@" "--config=$file"
fi
if [ -n "$COMPONENT_CAMERA_ID" ]; then
  set -- "$@" "--camera=$COMPONENT_CAMERA_ID"
fi
exec vigia "$@" "--source=$COMPONENT_SOURCE"
"""


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
            "gateway": {},
            "source": "rtsp://127.0.0.1:8554/cam1",
            "cameraId": "cam1",
            "logLevel": "INFO",
            "heartbeatIntervalS": 60,
            "watchS": 10,
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
                "Setenv": agent_environment(wheel),
                "install": {"RequiresPrivilege": False, "Timeout": 900, "Script": INSTALL_SCRIPT},
                "run": {"RequiresPrivilege": False, "Script": RUN_SCRIPT},
            },
            "Artifacts": [{"URI": artifact_uri, "Digest": digest_b64, "Algorithm": "SHA-256"}],
        }],
    }


def shadow_manager_configuration() -> dict[str, Any]:
    """Sync only the config shadow of the core device with IoT Core (ShadowManager syncs nothing by default)."""
    return {"synchronize": {"coreThing": {"classic": False, "namedShadows": [topics.CONFIG_SHADOW_NAME]},
                            "direction": "betweenDeviceAndCloud"}}
