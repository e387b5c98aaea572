"""`vigia edge run --thing` as a gateway would run it: real model on real footage, mutual TLS to Mosquitto,
per-camera settings taken from the named shadow that `vigia config set` wrote, candidates published and
acknowledged, the running configuration reported back."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.config_admin import ConfigAdmin, MqttShadowBackend
from contracts import Candidate, topics
from tests.footage import cut

from .conftest import CLOUD_ID, cloud_settings

pytestmark = pytest.mark.integration


def test_edge_run_with_thing_publishes_candidates_under_the_shadow_config(
        broker, pki, shadow_service, tmp_path: Path, vtest: Path, gateway_model_dir: Path) -> None:
    with MqttShadowBackend(cloud_settings(broker, pki, "config-admin-cli")) as backend:
        admin = ConfigAdmin(backend)
        admin.set("gw2", {"threshold": 0.55, "detect_threshold": 0.35}, cameras=["plaza"])
    received: list[Candidate] = []
    lock = threading.Lock()
    me = pki.ids[CLOUD_ID]
    consumer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cli-consumer", protocol=mqtt.MQTTv5)
    consumer.tls_set(ca_certs=me.ca_file, certfile=me.cert_file, keyfile=me.key_file)
    subscribed = threading.Event()
    consumer.on_connect = lambda c, u, f, rc, p: c.subscribe(topics.candidates_filter("gw2"), qos=1)
    consumer.on_subscribe = lambda *a: subscribed.set()

    def on_message(client, userdata, message) -> None:
        with lock:
            received.append(Candidate.model_validate_json(message.payload))

    consumer.on_message = on_message
    consumer.connect(broker.host, broker.port)
    consumer.loop_start()
    try:
        assert subscribed.wait(5)
        gw = pki.ids["gw2"]
        clip = cut(vtest, tmp_path / "plaza.avi", 8)
        result = subprocess.run(
            [sys.executable, "-m", "vigia.cli", "edge", "run", "--source", str(clip), "--camera", "plaza",
             "--thing", "gw2", "--transport", "paho", "--mqtt-host", broker.host, "--mqtt-port", str(broker.port),
             "--ca", gw.ca_file, "--cert", gw.cert_file, "--key", gw.key_file, "--data-dir", str(tmp_path / "gw"),
             "--model-dir", str(gateway_model_dir), "--heartbeat-interval", "1"],
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads(result.stdout.splitlines()[-1])
        sent = [c["event_id"] for c in summary["candidates"]]
        assert sent
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(received) < len(sent):
            time.sleep(0.05)
        with lock:
            assert [c.event_id for c in received] == sent  # in order, each once
            first = received[0]
        assert first.gateway_id == "gw2" and first.camera_id == "plaza"
        assert first.threshold == 0.55 and first.config_version is not None  # the shadow's config, not defaults
        view = {v.camera_id: v for v in admin_show(broker, pki)}
        assert view["plaza"].reported.get("threshold") == 0.55
    finally:
        consumer.loop_stop()
        consumer.disconnect()


def admin_show(broker, pki):
    with MqttShadowBackend(cloud_settings(broker, pki, "config-admin-show")) as backend:
        return ConfigAdmin(backend).show("gw2")
