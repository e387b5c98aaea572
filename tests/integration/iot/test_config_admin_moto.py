"""`vigia config set / show` against boto3 `iot-data` on moto server (real HTTP on loopback): the
endpoint comes from AWS_ENDPOINT_URL, as in production code."""

from __future__ import annotations

import json

import boto3
import pytest

from cloud.config_admin import ConfigAdmin, IotDataBackend
from vigia.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def moto_endpoint(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    boto3.client("iot").create_thing(thingName="gw1")
    yield endpoint
    server.stop()


def test_set_and_show_through_iot_data(moto_endpoint, capsys):
    admin = ConfigAdmin(IotDataBackend())
    accepted = admin.set("gw1", {"threshold": 0.6}, cameras=["cam1"])
    assert accepted["state"]["desired"] == {"cameras": {"cam1": {"threshold": 0.6}}}

    # the gateway reports something else: show flags the drift, and exits 1 for scripts
    boto3.client("iot-data").update_thing_shadow(
        thingName="gw1", shadowName="vigia-config",
        payload=json.dumps({"state": {"reported": {"cameras": {"cam1": {"threshold": 0.5}},
                                                   "errors": {"cam1": "boom"}}}}).encode())
    (view,) = admin.show("gw1")
    assert view.drift == {"threshold": (0.6, 0.5)} and view.error == "boom"
    assert main(["config", "show", "--thing", "gw1"]) == 1
    assert "not applied" in capsys.readouterr().out

    # the CLI path: parse, validate, send
    assert main(["config", "set", "--thing", "gw1", "--camera", "cam1", "--camera", "cam2", "threshold=0.7",
                 "filters.min_area=0.001"]) == 0
    doc = admin.backend.get("gw1", "vigia-config")
    assert doc["state"]["desired"]["cameras"]["cam2"] == {"threshold": 0.7, "filters": {"min_area": 0.001}}
    # refused before sending, with the field's error
    assert main(["config", "set", "--thing", "gw1", "--camera", "cam1", "threshold=1.2"]) == 2
    assert "less than or equal to 0.99" in capsys.readouterr().err
    assert main(["config", "set", "--thing", "gw1", "--camera", "cam1", "colour=red"]) == 2
    assert admin.backend.get("gw1", "vigia-config")["version"] == doc["version"]
