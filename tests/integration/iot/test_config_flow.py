"""Operator → shadow → gateway, end to end over Mosquitto (mTLS + ACLs) and the local shadow service:
the agent side is a real PahoTransport as gateway `gw1`, ShadowSync and ConfigStore; the operator side is
the same ConfigAdmin code `vigia config set` runs, over MQTT as the cloud identity."""

from __future__ import annotations

import time

import pytest

from cloud.config_admin import ConfigAdmin, MqttShadowBackend
from edge_agent.config_store import ConfigStore
from edge_agent.shadow_sync import ShadowSync
from edge_agent.transport import make_transport

from .conftest import cloud_settings, transport_settings

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


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
