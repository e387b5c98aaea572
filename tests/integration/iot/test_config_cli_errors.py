"""`vigia config` when the shadow cannot be reached or the credentials are refused: one line on stderr,
exit status 2, no traceback. Real failures: a closed port, a certificate from another CA against the real
Mosquitto, an AWS endpoint that does not answer."""

from __future__ import annotations

import pytest

from vigia.cli import main

from .conftest import free_port

pytestmark = pytest.mark.integration


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _mqtt(host: str, port: int, identity) -> list[str]:
    return ["--backend", "mqtt", "--mqtt-host", host, "--mqtt-port", str(port), "--mqtt-ca", identity.ca_file,
            "--mqtt-cert", identity.cert_file, "--mqtt-key", identity.key_file]


def test_broker_not_listening(pki, capsys):
    port = free_port()
    args = ["config", "set", "--thing", "gw1", *_mqtt("127.0.0.1", port, pki.ids["vigia-cloud"]),
            "--camera", "cam1", "threshold=0.6"]
    assert main(args) == 2
    assert _one_error_line(capsys).startswith(f"vigia config set: error: cannot connect to the broker at "
                                              f"127.0.0.1:{port}: ")


def test_certificate_from_another_ca(broker, pki, capsys):
    args = ["config", "show", "--thing", "gw1", *_mqtt(broker.host, broker.port, pki.rogue)]
    assert main(args) == 2
    assert _one_error_line(capsys).startswith(f"vigia config show: error: cannot connect to the broker at "
                                              f"{broker.host}:{broker.port}")


def test_missing_key_file(pki, capsys, tmp_path):
    me = pki.ids["vigia-cloud"]
    args = ["config", "show", "--thing", "gw1", "--backend", "mqtt", "--mqtt-ca", me.ca_file,
            "--mqtt-cert", me.cert_file, "--mqtt-key", str(tmp_path / "absent.key")]
    assert main(args) == 2
    assert _one_error_line(capsys).startswith("vigia config show: error: cannot use the TLS files for the broker")


def test_aws_endpoint_that_does_not_answer(monkeypatch, capsys):
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "eu-west-1",
                       "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(key, value)
    assert main(["config", "set", "--thing", "gw1", "--camera", "cam1", "threshold=0.6"]) == 2
    assert _one_error_line(capsys).startswith("vigia config set: error: AWS IoT shadow get failed: "
                                              "Could not connect to the endpoint URL")
