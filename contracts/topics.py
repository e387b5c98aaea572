"""MQTT topic names, per thing and camera. Every ACL and IoT policy is written against these."""

from __future__ import annotations

CONFIG_SHADOW_NAME = "vigia-config"
TOPIC_ROOT = "vigia"


def candidates(thing: str, camera_id: str) -> str:
    return f"{TOPIC_ROOT}/{thing}/cameras/{camera_id}/candidates"


def candidates_filter(thing: str = "+") -> str:
    """Subscription filter for every camera's candidates of one thing (or all things)."""
    return f"{TOPIC_ROOT}/{thing}/cameras/+/candidates"


def telemetry(thing: str) -> str:
    return f"{TOPIC_ROOT}/{thing}/telemetry"


def heartbeat(thing: str) -> str:
    return f"{TOPIC_ROOT}/{thing}/heartbeat"


def shadow_prefix(thing: str, shadow: str = CONFIG_SHADOW_NAME) -> str:
    return f"$aws/things/{thing}/shadow/name/{shadow}"


def shadow_topic(thing: str, operation: str, shadow: str = CONFIG_SHADOW_NAME) -> str:
    """operation: 'update', 'get', 'delete', 'update/delta', 'update/accepted', 'get/accepted', ..."""
    return f"{shadow_prefix(thing, shadow)}/{operation}"
