"""`vigia edge run --thing` as a gateway would run it: real model on real footage, mutual TLS to Mosquitto,
per-camera settings taken from the named shadow that `vigia config set` wrote, candidates published and
acknowledged, the running configuration reported back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloud.config_admin import ConfigAdmin, MqttShadowBackend
from tests.footage import cut

from .conftest import CandidateConsumer, cloud_settings

pytestmark = pytest.mark.integration


def test_edge_run_with_thing_publishes_candidates_under_the_shadow_config(
        broker, pki, shadow_service, tmp_path: Path, vtest: Path, gateway_model_dir: Path) -> None:
    with MqttShadowBackend(cloud_settings(broker, pki, "config-admin-cli")) as backend:
        admin = ConfigAdmin(backend)
        admin.set("gw2", {"threshold": 0.55, "detect_threshold": 0.35}, cameras=["plaza"])
    with CandidateConsumer(broker, pki, "cli-consumer", "gw2") as consumer:
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
        received = consumer.wait_for(len(sent))
        assert [c.event_id for c in received] == sent  # in order, each once
        first = received[0]
        assert first.gateway_id == "gw2" and first.camera_id == "plaza"
        assert first.threshold == 0.55 and first.config_version is not None  # the shadow's config, not defaults
        view = {v.camera_id: v for v in admin_show(broker, pki)}
        assert view["plaza"].reported.get("threshold") == 0.55


def admin_show(broker, pki):
    with MqttShadowBackend(cloud_settings(broker, pki, "config-admin-show")) as backend:
        return ConfigAdmin(backend).show("gw2")
