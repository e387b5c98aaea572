"""The IoT policy every gateway certificate carries: least privilege, scoped by the thing's own name.

`${iot:Connection.Thing.ThingName}` is the name of the thing the certificate is attached to, so one
policy serves every gateway and none can act as another: it connects only as its own client id, publishes
and receives only its own `vigia/<thing>/...` topics and its own `vigia-config` named shadow topics.
(Mosquitto's `pattern ... %u` ACLs in the tests play the same role; see tests/integration/iot.)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from contracts import topics

THING = "${iot:Connection.Thing.ThingName}"
SHADOW_RESPONSES = ("get/accepted", "get/rejected", "update/accepted", "update/rejected", "update/delta")


def gateway_policy(region: str = "*", account: str = "*") -> dict[str, Any]:
    arn = f"arn:aws:iot:{region}:{account}"
    # IoT policy resources use `*` (not MQTT's `+`) as the wildcard
    publish_topics = [topics.candidates(THING, "*"), topics.telemetry(THING), topics.heartbeat(THING),
                      topics.shadow_topic(THING, "get"), topics.shadow_topic(THING, "update")]
    response_topics = [topics.shadow_topic(THING, op) for op in SHADOW_RESPONSES]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectAsOwnThing",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{arn}:client/{THING}",
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                "Sid": "PublishOwnTopics",
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": [f"{arn}:topic/{t}" for t in publish_topics],
            },
            {
                "Sid": "SubscribeOwnShadow",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [f"{arn}:topicfilter/{t}" for t in response_topics],
            },
            {
                "Sid": "ReceiveOwnShadow",
                "Effect": "Allow",
                "Action": "iot:Receive",
                "Resource": [f"{arn}:topic/{t}" for t in response_topics],
            },
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print the gateway IoT policy document")
    parser.add_argument("--region", default="*")
    parser.add_argument("--account", default="*")
    args = parser.parse_args(argv)
    print(json.dumps(gateway_policy(args.region, args.account), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
