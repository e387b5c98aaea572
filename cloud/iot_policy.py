"""The IoT policy every gateway certificate carries: least privilege, scoped by the thing's own name.

`${iot:Connection.Thing.ThingName}` is the name of the thing the certificate is attached to, so one
policy serves every gateway and none can act as another: it connects only as its own client id, publishes
and receives only its own `vigia/<thing>/...` topics and its own `vigia-config` named shadow topics, and
may exchange its certificate for the gateway role (KVS streams and S3 prefix of its own, see the role
alias in cloud/infra/template.yaml). (Mosquitto's `pattern ... %u` ACLs in the tests play the same role;
see tests/integration/iot.)

Size: IoT refuses a policy over 2,048 characters, counted without whitespace. The shadow's response
topics are therefore written with wildcards that match exactly the topics AWS defines and nothing more
(`get/*` = get/accepted|rejected; `update/*ed` = update/accepted|rejected; `update/delta` on its own), and
Subscribe and Receive share one statement: Subscribe is only ever checked against `topicfilter/`
resources and Receive against `topic/` ones, so sharing widens neither.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from contracts import topics

THING = "${iot:Connection.Thing.ThingName}"
MAX_POLICY_CHARS = 2048  # AWS IoT Core quota: policy document size, whitespace not counted
# The responses the agent waits for, as IoT policy resource patterns (`*` is IoT's wildcard, not MQTT's `+`).
SHADOW_RESPONSE_PATTERNS = ("get/*", "update/*ed", "update/delta")
# What those patterns must cover, no more (the test checks it against the full list AWS defines).
SHADOW_RESPONSES = ("get/accepted", "get/rejected", "update/accepted", "update/rejected", "update/delta")
DEFAULT_ROLE_ALIAS = "vigia-*-gateway"  # the template names it vigia-${Stage}-gateway


def gateway_policy(region: str = "*", account: str = "*", role_alias: str = DEFAULT_ROLE_ALIAS) -> dict[str, Any]:
    arn = f"arn:aws:iot:{region}:{account}"
    publish_topics = [topics.candidates(THING, "*"), topics.telemetry(THING), topics.heartbeat(THING),
                      topics.shadow_topic(THING, "get"), topics.shadow_topic(THING, "update")]
    responses = [topics.shadow_topic(THING, op) for op in SHADOW_RESPONSE_PATTERNS]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Connect",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{arn}:client/{THING}",
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                "Sid": "Publish",
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": [f"{arn}:topic/{t}" for t in publish_topics],
            },
            {
                "Sid": "ShadowResponses",
                "Effect": "Allow",
                "Action": ["iot:Subscribe", "iot:Receive"],
                "Resource": [f"{arn}:topicfilter/{t}" for t in responses] + [f"{arn}:topic/{t}" for t in responses],
            },
            {
                # certificate → temporary credentials of the gateway role (Greengrass token exchange
                # service or the credentials provider directly); that role is itself scoped by thing name
                "Sid": "AssumeGatewayRole",
                "Effect": "Allow",
                "Action": "iot:AssumeRoleWithCertificate",
                "Resource": f"{arn}:rolealias/{role_alias}",
            },
        ],
    }


def policy_size(policy: dict[str, Any]) -> int:
    """The size IoT compares with its limit: the JSON text without whitespace."""
    return len(json.dumps(policy, separators=(",", ":")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print the gateway IoT policy document")
    parser.add_argument("--region", default="*")
    parser.add_argument("--account", default="*")
    parser.add_argument("--role-alias", default=DEFAULT_ROLE_ALIAS, help="e.g. vigia-prod-gateway")
    args = parser.parse_args(argv)
    policy = gateway_policy(args.region, args.account, args.role_alias)
    if policy_size(policy) > MAX_POLICY_CHARS:
        parser.error(f"policy is {policy_size(policy)} characters, over IoT's {MAX_POLICY_CHARS}")
    print(json.dumps(policy, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
