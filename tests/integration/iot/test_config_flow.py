"""Operator → shadow → gateway, end to end over Mosquitto (mTLS + ACLs) and the local shadow service:
the agent side is a real PahoTransport as gateway `gw1`, ShadowSync and ConfigStore; the operator side is
the same ConfigAdmin code `vigia config set` runs, over MQTT as the cloud identity."""

from __future__ import annotations

import json
import time

import pytest

from cloud.config_admin import ConfigAdmin, MqttShadowBackend
from edge_agent.config_store import ConfigStore
from edge_agent.shadow_sync import ShadowSync
from edge_agent.transport import make_transport
from tests.waiting import wait_for

from .conftest import cloud_settings, transport_settings

pytestmark = pytest.mark.integration


class Agent:
    """The gateway's config plane as `vigia edge run` wires it."""

    def __init__(self, broker, pki, path, thing="gw1") -> None:
        self.transport = make_transport(transport_settings(broker, pki.ids[thing], f"{thing}-agent"))
        self.transport.connect(timeout=5)
        self.store = ConfigStore(path, known_cameras=["cam1", "cam2", "cam3"])
        self.sync = ShadowSync(self.transport, thing, self.store)
        self.sync.start()
        assert self.sync.synced.wait(5)

    def close(self) -> None:
        self.sync.stop()
        self.transport.disconnect()


@pytest.fixture
def admin(broker, pki, shadow_service):
    with MqttShadowBackend(cloud_settings(broker, pki, "config-admin")) as backend:
        yield ConfigAdmin(backend)


def test_threshold_reaches_the_running_agent_within_2s(broker, pki, shadow_service, admin, tmp_path):
    agent = Agent(broker, pki, tmp_path / "config.json")
    try:
        started = time.monotonic()
        admin.set("gw1", {"threshold": 0.6, "filters": {"min_area": 0.001}}, cameras=["cam1", "cam2"])
        assert wait_for(lambda: agent.store.for_camera("cam2").threshold == 0.6, 2.0)
        elapsed = time.monotonic() - started
        assert agent.store.for_camera("cam1").filters.min_area == 0.001
        assert agent.store.for_camera("cam3").threshold == 0.5  # not targeted
        # reported follows: the operator sees no drift
        assert wait_for(lambda: all(not v.drift for v in admin.show("gw1")), 2.0)
        views = {v.camera_id: v for v in admin.show("gw1")}
        assert views["cam1"].reported["threshold"] == 0.6 and views["cam1"].error is None
        assert agent.store.version > 0
        print(f"applied within {elapsed:.3f}s")
    finally:
        agent.close()


def test_invalid_value_is_refused_and_old_value_kept_across_restart(broker, pki, shadow_service, admin,
                                                                       tmp_path):
    path = tmp_path / "config.json"
    agent = Agent(broker, pki, path)
    try:
        admin.set("gw1", {"threshold": 0.7}, cameras=["cam1"])
        assert wait_for(lambda: agent.store.for_camera("cam1").threshold == 0.7, 2.0)
        # the admin validates before sending: nothing reaches the shadow
        with pytest.raises(ValueError, match=r"threshold: Input should be less than or equal to 0\.99"):
            admin.set("gw1", {"threshold": 1.5}, cameras=["cam1"])
        # a bad value written by another tool (console, script) is refused by the gateway itself
        admin.backend.update("gw1", "vigia-config",
                             {"state": {"desired": {"cameras": {"cam1": {"threshold": 1.5}, "cam2": {"sample_fps": 2},
                                                                "nope": {"threshold": 0.6}}}}})
        assert wait_for(lambda: agent.store.for_camera("cam2").sample_fps == 2, 2.0)
        assert agent.store.for_camera("cam1").threshold == 0.7

        def reported_errors():
            doc = admin.backend.get("gw1", "vigia-config")
            return doc["state"]["reported"].get("errors") or {}

        assert wait_for(lambda: "cam1" in reported_errors(), 2.0)
        errors = reported_errors()
        assert errors["cam1"] == "threshold: Input should be less than or equal to 0.99"
        assert "unknown camera" in errors["nope"]
        views = {v.camera_id: v for v in admin.show("gw1")}
        assert views["cam1"].drift["threshold"] == (1.5, 0.7)
    finally:
        agent.close()

    # the gateway restarts: the last good value comes back from its file, and again after the full get
    restarted = ConfigStore(path, known_cameras=["cam1", "cam2", "cam3"])
    assert restarted.for_camera("cam1").threshold == 0.7
    agent = Agent(broker, pki, path)
    try:
        assert agent.store.for_camera("cam1").threshold == 0.7
        assert agent.store.for_camera("cam2").sample_fps == 2
        assert "cam1" in agent.store.errors
        # once the operator fixes it, the error clears from reported
        admin.set("gw1", {"threshold": 0.65}, cameras=["cam1"])
        assert wait_for(lambda: agent.store.for_camera("cam1").threshold == 0.65, 2.0)
        assert wait_for(lambda: "cam1" not in (admin.backend.get("gw1", "vigia-config")["state"]["reported"]
                                               .get("errors") or {}), 2.0)
    finally:
        agent.close()


def test_all_cameras_and_oversize_refusal(broker, pki, shadow_service, admin, tmp_path):
    agent = Agent(broker, pki, tmp_path / "config.json")
    try:
        admin.set("gw1", {"sample_fps": 4}, cameras=["cam1", "cam2", "cam3"])
        assert wait_for(lambda: agent.store.for_camera("cam3").sample_fps == 4, 2.0)
        admin.set("gw1", {"tiling": "off"}, all_cameras=True)
        assert wait_for(lambda: all(agent.store.for_camera(c).tiling == "off" for c in ("cam1", "cam2", "cam3")),
                        2.0)
        square = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]] * 16
        with pytest.raises(ValueError, match="8192 byte"):
            admin.set("gw1", {"filters": {"masks": [square] * 8}}, cameras=["cam1", "cam2"])
    finally:
        agent.close()


# --- poison: nothing in a shadow message stops either side ------------------------------------------------
POISON_SHADOW = "vigia-config-poison"  # a shadow of its own, so other tests' state does not matter


def _raw_cloud_client(broker, pki, client_id: str, answers: list):
    """A bare MQTT client with the cloud identity, to send what no well-behaved tool would."""
    import json as _json
    import threading

    from cloud.shadow_service import make_paho_client

    client = make_paho_client(cloud_settings(broker, pki, client_id))
    subscribed = threading.Event()
    client.on_subscribe = lambda c, u, mid, rc, p: subscribed.set()
    client.on_message = lambda c, u, m: answers.append((m.topic.rsplit("/", 1)[-1], _json.loads(m.payload)))
    client.connect(broker.host, broker.port)
    client.loop_start()
    # answers only: a delta this client sends itself would come back to it
    client.subscribe([(f"$aws/things/gw2/shadow/name/{POISON_SHADOW}/update/{outcome}", 1)
                      for outcome in ("accepted", "rejected")])
    assert subscribed.wait(5)
    return client


def test_shadow_service_answers_after_deeply_nested_and_oversized_requests(broker, pki, shadow_service):
    answers: list = []
    client = _raw_cloud_client(broker, pki, "poisoner", answers)
    try:
        topic = f"$aws/things/gw2/shadow/name/{POISON_SHADOW}/update"
        client.publish(topic, b'{"clientToken":"deep","state":{"desired":' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
                       qos=1).wait_for_publish(5)
        client.publish(topic, b'{"clientToken":"huge","state":{"desired":{"x":"' + b"a" * 1_000_000 + b'"}}}',
                       qos=1).wait_for_publish(5)
        client.publish(topic, b'{"clientToken":"fine","state":{"desired":{"cameras":{"cam1":{"threshold":0.6}}}}}',
                       qos=1).wait_for_publish(5)
        assert wait_for(lambda: len(answers) == 3, 5.0)
        by_token = {body.get("clientToken"): (outcome, body) for outcome, body in answers}
        assert by_token["deep"][0] == "rejected" and by_token["deep"][1]["code"] == 400
        assert by_token["deep"][1]["message"] == "JSON contains too many levels of nesting; maximum is 32"
        assert by_token["huge"][0] == "rejected" and by_token["huge"][1]["code"] == 413
        assert by_token["fine"][0] == "accepted"
        assert by_token["fine"][1]["state"] == {"desired": {"cameras": {"cam1": {"threshold": 0.6}}}}
    finally:
        client.disconnect()
        client.loop_stop()
    with MqttShadowBackend(cloud_settings(broker, pki, "poison-reader")) as backend:  # and still serves others
        assert backend.get("gw2", POISON_SHADOW)["state"]["desired"]["cameras"]["cam1"]["threshold"] == 0.6


def test_agent_lives_through_poison_and_applies_the_next_good_delta(broker, pki, shadow_service, tmp_path):
    transport = make_transport(transport_settings(broker, pki.ids["gw2"], "gw2-poison-agent"))
    transport.connect(timeout=5)
    store = ConfigStore(tmp_path / "config.json", known_cameras=["cam1", "cam2"])
    sync = ShadowSync(transport, "gw2", store, shadow_name=POISON_SHADOW)
    sync.start()
    answers: list = []
    client = _raw_cloud_client(broker, pki, "poison-admin", answers)
    try:
        assert sync.synced.wait(5)
        with MqttShadowBackend(cloud_settings(broker, pki, "poison-config")) as backend:
            admin = ConfigAdmin(backend, shadow_name=POISON_SHADOW)
            # hundreds of unknown keys written by some other tool: one summarised error, under 8 KB
            unknown = {f"k{i:03d}": 1 for i in range(300)}
            backend.update("gw2", POISON_SHADOW, {"state": {"desired": unknown | {"cameras": {"cam2": {"tiling": 7}}}}})
            assert wait_for(lambda: set(store.errors) == {"_unknown", "cam2"}, 3.0)

            def reported():
                return backend.get("gw2", POISON_SHADOW)["state"]["reported"]

            assert wait_for(lambda: reported().get("error_count") == 2, 3.0)
            assert len(json.dumps(reported(), separators=(",", ":"))) < 8192
            # a delta 10,000 levels deep, straight onto the gateway's delta topic
            client.publish(f"$aws/things/gw2/shadow/name/{POISON_SHADOW}/update/delta",
                           b'{"state":' * 10_000 + b"1" + b"}" * 10_000, qos=1).wait_for_publish(5)
            assert wait_for(lambda: "_document" in store.errors, 3.0)
            assert sync.alive
            # the next good delta applies, and the operator's clean-up clears every refusal
            admin.set("gw2", {"threshold": 0.72}, cameras=["cam1"])
            assert wait_for(lambda: store.for_camera("cam1").threshold == 0.72, 3.0)
            backend.update("gw2", POISON_SHADOW, {"state": {"desired": {k: None for k in unknown}
                                                            | {"cameras": {"cam2": None}}}})
            assert wait_for(lambda: store.errors == {}, 3.0)
            assert wait_for(lambda: "errors" not in reported(), 3.0)
    finally:
        client.disconnect()
        client.loop_stop()
        sync.stop()
        transport.disconnect()


def test_config_set_null_removes_the_key_and_the_camera_falls_back(broker, pki, shadow_service, admin, tmp_path):
    from vigia.cli import main

    me = pki.ids["vigia-cloud"]
    cli = ["config", "set", "--thing", "gw1", "--backend", "mqtt", "--mqtt-host", broker.host,
           "--mqtt-port", str(broker.port), "--mqtt-ca", me.ca_file, "--mqtt-cert", me.cert_file,
           "--mqtt-key", me.key_file, "--mqtt-client-id", "config-cli", "--camera", "cam3"]
    agent = Agent(broker, pki, tmp_path / "config.json")
    try:
        assert main([*cli, "threshold=0.61", "sample_fps=3"]) == 0
        assert wait_for(lambda: agent.store.for_camera("cam3").threshold == 0.61, 2.0)
        assert main([*cli, "threshold=null"]) == 0
        desired = admin.backend.get("gw1", "vigia-config")["state"]["desired"]
        assert "threshold" not in desired["cameras"]["cam3"] and desired["cameras"]["cam3"]["sample_fps"] == 3
        fallback = agent.store.config.defaults.threshold
        assert wait_for(lambda: agent.store.for_camera("cam3").threshold == fallback, 2.0)
        assert agent.store.for_camera("cam3").sample_fps == 3
    finally:
        agent.close()
