"""The gateway's IoT policy: least privilege, scoped by thing, and within IoT's 2,048-character limit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cloud.iot_policy import MAX_POLICY_CHARS, SHADOW_RESPONSES, THING, gateway_policy, policy_size
from contracts import topics

# Every topic AWS defines for a named shadow (IoT developer guide, "Device Shadow MQTT topics").
ALL_SHADOW_OPERATIONS = ("get", "get/accepted", "get/rejected", "update", "update/accepted", "update/rejected",
                         "update/delta", "update/documents", "delete", "delete/accepted", "delete/rejected")


def _iot_matches(pattern: str, resource: str) -> bool:
    """IoT policy resource matching: `*` any run of characters (slashes included), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, resource) is not None


def _resources(statement: dict) -> list[str]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _allowed(policy: dict, action: str, resource: str) -> bool:
    return any(action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
               and any(_iot_matches(p, resource) for p in _resources(s)) for s in policy["Statement"])


def test_fits_the_limit_the_way_iot_counts_with_a_long_region_and_account():
    policy = gateway_policy("ap-southeast-2", "123456789012", "vigia-production-gateway")
    text = json.dumps(policy, indent=4)
    size = len(re.sub(r"\s", "", text))  # IoT ignores whitespace; no value in the policy contains any
    assert size == policy_size(policy)
    assert size <= MAX_POLICY_CHARS, size


def test_connects_only_as_its_own_client_id():
    policy = gateway_policy("eu-west-1", "123456789012")
    arn = "arn:aws:iot:eu-west-1:123456789012"
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["Connect"]["Resource"] == f"{arn}:client/{THING}"
    assert statements["Connect"]["Condition"] == {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                        else s["Action"])}
    assert actions == {"iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive",
                       "iot:AssumeRoleWithCertificate"}  # no iot:*


def test_every_resource_is_the_things_own_or_its_role_alias():
    policy = gateway_policy("eu-west-1", "123456789012")
    for statement in policy["Statement"]:
        for resource in _resources(statement):
            if statement["Action"] == "iot:AssumeRoleWithCertificate":
                assert resource == "arn:aws:iot:eu-west-1:123456789012:rolealias/vigia-*-gateway"
                continue
            assert THING in resource, resource
            # never "everything below the thing": only named topics, or patterns below a named shadow operation
            assert "#" not in resource and not resource.endswith((f"{THING}/*", f"{THING}*")), resource


@pytest.mark.parametrize("thing", ["gw1", "gw-other"])
def test_publish_and_shadow_rights_are_exactly_the_agents(thing: str):
    """Substituting the variable as IoT does: what a thing may publish and receive, topic by topic."""
    policy = json.loads(json.dumps(gateway_policy("eu-west-1", "123456789012")).replace(THING, thing))
    arn = "arn:aws:iot:eu-west-1:123456789012"
    own = [topics.candidates(thing, "cam1"), topics.telemetry(thing), topics.heartbeat(thing),
           topics.shadow_topic(thing, "get"), topics.shadow_topic(thing, "update")]
    assert all(_allowed(policy, "iot:Publish", f"{arn}:topic/{t}") for t in own)
    for foreign in (topics.candidates("intruder", "cam1"), topics.telemetry("intruder"), f"vigia/{thing}/other",
                    topics.shadow_topic(thing, "delete"), topics.shadow_topic(thing, "get", "classic")):
        assert not _allowed(policy, "iot:Publish", f"{arn}:topic/{foreign}"), foreign
    # the response patterns cover exactly the responses the agent waits for, among all shadow topics
    for operation in ALL_SHADOW_OPERATIONS:
        topic = topics.shadow_topic(thing, operation)
        expected = operation in SHADOW_RESPONSES
        assert _allowed(policy, "iot:Subscribe", f"{arn}:topicfilter/{topic}") is expected, operation
        assert _allowed(policy, "iot:Receive", f"{arn}:topic/{topic}") is expected, operation
        assert not _allowed(policy, "iot:Receive", f"{arn}:topic/{topics.shadow_topic('intruder', operation)}")
    # Subscribe is never granted on a topic resource, nor Receive on a filter: sharing widened nothing
    assert not _allowed(policy, "iot:Subscribe", f"{arn}:topicfilter/{topics.candidates(thing, 'cam1')}")


def test_committed_document_is_the_generated_one():
    committed = json.loads((Path(__file__).parents[2] / "cloud" / "iot_policy.json").read_text())
    assert committed == gateway_policy()
