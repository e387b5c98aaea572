"""Transport port pieces that need no broker: adapter choice, backoff, topic matching, the Greengrass
IPC adapter, the outbox publisher's ordering and retry rules, and the gateway IoT policy's shape.

The Greengrass IPC adapter cannot run outside a Greengrass core device (the nucleus owns the IPC socket),
so it is tested here with a fake `GreengrassCoreIPCClientV2` injected at the wire boundary: the fake
records the IPC calls the adapter makes and plays the nucleus's answers.
"""

from __future__ import annotations

import json
import random
import types
from pathlib import Path

import pytest

from contracts import topics
from contracts.telemetry import CameraStatus, Heartbeat
from edge_agent.config_store import ConfigStore
from edge_agent.outbox import Outbox
from edge_agent.publisher import OutboxPublisher
from edge_agent.shadow_sync import ShadowSync
from edge_agent.transport import (
    Backoff,
    NotConnectedError,
    PublishRejectedError,
    TlsSettings,
    TransportSettings,
    choose_kind,
    make_transport,
    topic_matches,
)
from edge_agent.transport.greengrass_ipc import GreengrassIpcTransport

GG_ENV = {"AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": "/greengrass/ipc.socket", "SVCUID": "x"}


def test_factory_picks_the_adapter():
    plain = TransportSettings(thing_name="gw1")
    aws = TransportSettings(thing_name="gw1", host="abc-ats.iot.eu-west-1.amazonaws.com",
                            tls=TlsSettings(cert_file="c.pem", key_file="k.pem", ca_file="ca.pem"))
    assert choose_kind(plain, {}) == "paho"
    assert choose_kind(aws, {}) == "iotcore"
    assert choose_kind(aws, GG_ENV) == "greengrass"
    assert choose_kind(TransportSettings(thing_name="gw1", kind="paho"), GG_ENV) == "paho"
    assert type(make_transport(plain, {})).__name__ == "PahoTransport"
    assert type(make_transport(plain, GG_ENV)).__name__ == "GreengrassIpcTransport"


def test_settings_refuse_unknown_fields_and_bad_values():
    with pytest.raises(ValueError, match="extra"):
        TransportSettings(thing_name="gw1", hostname="x")
    with pytest.raises(ValueError, match="port"):
        TransportSettings(thing_name="gw1", port=70000)


def test_backoff_grows_with_jitter_and_caps():
    backoff = Backoff(0.5, 8, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(12)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert max(delays[6:]) > 2  # grows
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize(("flt", "topic", "ok"), [
    ("vigia/gw1/cameras/+/candidates", "vigia/gw1/cameras/cam1/candidates", True),
    ("vigia/gw1/#", "vigia/gw1/heartbeat", True),
    ("vigia/+/heartbeat", "vigia/gw1/telemetry", False),
    ("#", "$aws/things/gw1/shadow/name/vigia-config/update/delta", False),
    ("$aws/things/gw1/shadow/name/vigia-config/update/delta", "$aws/things/gw1/shadow/name/vigia-config/update/delta",
     True),
])
def test_topic_matching(flt, topic, ok):
    assert topic_matches(flt, topic) is ok


# --- Greengrass IPC with a fake nucleus client ---------------------------------------------------------
class ResourceNotFoundError(Exception):
    pass


class FakeIpc:
    """Plays GreengrassCoreIPCClientV2: records calls, keeps one local shadow like ShadowManager."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str, bytes]] = []
        self.subscribed: dict[str, object] = {}
        self.local_subscribed: dict[str, object] = {}
        self.shadow: dict | None = None
        self.version = 0

    def publish_to_iot_core(self, *, topic_name, qos, payload):
        self.published.append((topic_name, qos, payload))
        return types.SimpleNamespace()

    def subscribe_to_iot_core(self, *, topic_name, qos, on_stream_event, on_stream_error):
        self.subscribed[topic_name] = on_stream_event
        return types.SimpleNamespace(), types.SimpleNamespace(close=lambda: None)

    def subscribe_to_topic(self, *, topic, on_stream_event, on_stream_error):
        self.local_subscribed[topic] = on_stream_event
        return types.SimpleNamespace(), types.SimpleNamespace(close=lambda: None)

    def get_thing_shadow(self, *, thing_name, shadow_name):
        if self.shadow is None:
            raise ResourceNotFoundError("No shadow found")
        return types.SimpleNamespace(payload=json.dumps({"state": self.shadow, "version": self.version}).encode())

    def update_thing_shadow(self, *, thing_name, shadow_name, payload):
        request = json.loads(payload)
        self.version += 1
        self.shadow = {**(self.shadow or {}), **request["state"]}
        return types.SimpleNamespace(payload=json.dumps({"state": request["state"], "version": self.version}).encode())

    def deliver_iot(self, topic_filter, topic, payload):
        message = types.SimpleNamespace(topic_name=topic, payload=payload)
        self.subscribed[topic_filter](types.SimpleNamespace(message=message))

    def deliver_local(self, topic, payload):
        binary = types.SimpleNamespace(message=payload, context=types.SimpleNamespace(topic=topic))
        self.local_subscribed[topic](types.SimpleNamespace(binary_message=binary, json_message=None))


def _gg() -> tuple[GreengrassIpcTransport, FakeIpc]:
    fake = FakeIpc()
    transport = GreengrassIpcTransport(TransportSettings(thing_name="gw1", kind="greengrass"), ipc_client=fake)
    transport.connect()
    return transport, fake


def test_greengrass_publish_and_subscribe_go_through_the_mqtt_proxy():
    transport, fake = _gg()
    got = []
    transport.subscribe("vigia/gw1/commands/#", lambda t, p: got.append((t, p)))
    transport.publish(topics.candidates("gw1", "cam1"), b"{}")
    assert fake.published == [(topics.candidates("gw1", "cam1"), "1", b"{}")]
    fake.deliver_iot("vigia/gw1/commands/#", "vigia/gw1/commands/x", b"hi")
    assert got == [("vigia/gw1/commands/x", b"hi")]


def test_greengrass_shadow_requests_use_shadow_manager_and_answer_like_iot_core():
    transport, fake = _gg()
    answers = []
    for op in ("get/accepted", "get/rejected", "update/accepted"):
        transport.subscribe(topics.shadow_topic("gw1", op), lambda t, p: answers.append((t, json.loads(p))))
    transport.subscribe(topics.shadow_topic("gw1", "update/delta"), lambda t, p: answers.append((t, json.loads(p))))
    assert topics.shadow_topic("gw1", "update/delta") in fake.local_subscribed  # local pub/sub, not mqttproxy
    assert not fake.subscribed  # shadow answers never need SubscribeToIoTCore
    transport.publish(topics.shadow_topic("gw1", "get"), b'{"clientToken": "t1"}')
    assert answers[-1][0].endswith("/get/rejected") and answers[-1][1] == {
        "code": 404, "message": "No shadow found", "clientToken": "t1"}
    transport.publish(topics.shadow_topic("gw1", "update"), b'{"state": {"reported": {"a": 1}}, "clientToken": "t2"}')
    assert answers[-1][0].endswith("/update/accepted") and answers[-1][1]["clientToken"] == "t2"
    assert fake.published == []  # nothing went to IoT Core directly


def test_shadow_sync_runs_over_greengrass_ipc(tmp_path):
    transport, fake = _gg()
    fake.shadow, fake.version = {"desired": {"cameras": {"cam1": {"threshold": 0.6}}}}, 4
    store = ConfigStore(tmp_path / "cfg.json")
    sync = ShadowSync(transport, "gw1", store)
    sync.start()
    try:
        assert sync.synced.wait(5)
        assert store.for_camera("cam1").threshold == 0.6 and store.version == 4
        assert fake.shadow["reported"]["cameras"]["cam1"]["threshold"] == 0.6
        delta = {"state": {"cameras": {"cam1": {"threshold": 0.75}}}, "version": 6}
        fake.deliver_local(topics.shadow_topic("gw1", "update/delta"), json.dumps(delta).encode())
        import time

        deadline = time.monotonic() + 3
        while store.for_camera("cam1").threshold != 0.75 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.for_camera("cam1").threshold == 0.75 and store.version == 6
    finally:
        sync.stop()


# --- publisher rules with a scripted transport ---------------------------------------------------------
class ScriptedTransport:
    def __init__(self, failures: list[Exception | None]) -> None:
        self.failures = failures
        self.sent: list[tuple[str, bytes]] = []
        self.is_connected = True

    def publish(self, topic, payload, qos=1, timeout=None):
        outcome = self.failures.pop(0) if self.failures else None
        if outcome is not None:
            raise outcome
        self.sent.append((topic, payload))


def test_publisher_keeps_order_and_removes_only_after_ack(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.sqlite")
    for i in range(3):
        outbox.put(f"E{i}", topics.candidates("gw1", "cam1"), f"m{i}".encode())
    transport = ScriptedTransport([None, NotConnectedError("down"), None, None, None])
    publisher = OutboxPublisher(outbox, transport, "gw1", heartbeat_interval_s=3600, backoff_min_s=0.01)
    delay = publisher.run_once()  # heartbeat ok, then the first message fails
    assert delay > 0 and outbox.count_pending() == 3
    assert [t for t, _ in transport.sent] == [topics.heartbeat("gw1")]
    heartbeat = json.loads(transport.sent[0][1])
    assert heartbeat["schema_version"] == 1 and heartbeat["outbox_pending"] == 3
    publisher.run_once()
    assert [p for _, p in transport.sent[1:]] == [b"m0", b"m1", b"m2"] and outbox.count_pending() == 0


def test_heartbeat_carries_each_cameras_health_and_survives_a_status_bug(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.sqlite")
    statuses = {"door": CameraStatus(state="reconnecting", source="rtsp://***@10.0.0.5/1", reconnects=3,
                                     last_error="connection refused"),
                "yard": CameraStatus(state="connected", frames=120)}
    transport = ScriptedTransport([])
    publisher = OutboxPublisher(outbox, transport, "gw1", camera_status=lambda: statuses)
    publisher.run_once()
    beat = Heartbeat.model_validate_json(transport.sent[0][1])
    assert beat.cameras == statuses

    def broken() -> dict:
        raise RuntimeError("status bug")

    transport.sent.clear()
    publisher = OutboxPublisher(outbox, transport, "gw1", camera_status=broken)
    publisher.run_once()
    assert Heartbeat.model_validate_json(transport.sent[0][1]).cameras == {}  # the heartbeat still goes


def test_publisher_waits_while_disconnected_and_on_rejection(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.put("E1", topics.candidates("gw1", "cam1"), b"m")
    transport = ScriptedTransport([None, PublishRejectedError("t", "NOT_AUTHORIZED")])
    transport.is_connected = False
    publisher = OutboxPublisher(outbox, transport, "gw1", backoff_min_s=0.01)
    assert publisher.run_once() > 0 and transport.sent == []
    transport.is_connected = True
    publisher.run_once()
    assert outbox.count_pending() == 1  # refused messages stay: nothing accepted is dropped
    publisher.run_once()
    assert outbox.count_pending() == 0
