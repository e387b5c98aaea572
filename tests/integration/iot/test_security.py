"""Mosquitto as IoT Core: mutual TLS, one certificate per gateway, ACLs that confine each gateway to
its own topics. Over MQTT 5 a forbidden publish gets PUBACK NOT_AUTHORIZED; a forbidden subscription
is granted but delivers nothing, so non-delivery is what is asserted."""

from __future__ import annotations

import threading
import time

import pytest

from contracts import topics
from edge_agent.transport import PublishRejectedError, TransportError, make_transport

from .conftest import transport_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def connect(broker, pki):
    opened = []

    def _connect(name: str, client_id: str | None = None, identity=None, **extra):
        transport = make_transport(transport_settings(broker, identity or pki.ids[name], client_id, **extra))
        opened.append(transport)
        transport.connect(timeout=5)
        return transport

    yield _connect
    for t in opened:
        t.disconnect()


def _collector():
    got: list[tuple[str, bytes]] = []
    event = threading.Event()

    def callback(topic: str, payload: bytes) -> None:
        got.append((topic, payload))
        event.set()

    return got, event, callback


@pytest.mark.parametrize("kind", ["paho", "iotcore"])
def test_gateway_uses_its_own_topics(connect, kind):
    gw1 = connect("gw1", f"gw1-{kind}", kind=kind)
    got, event, callback = _collector()
    gw1.subscribe(topics.candidates_filter("gw1"), callback)
    time.sleep(0.2)
    gw1.publish(topics.candidates("gw1", "cam1"), b'{"hello": 1}')
    assert event.wait(3)
    assert got == [(topics.candidates("gw1", "cam1"), b'{"hello": 1}')]


@pytest.mark.parametrize("kind", ["paho", "iotcore"])
def test_gateway_cannot_publish_to_another_gateways_topics(connect, kind):
    cloud = connect("vigia-cloud", "cloud-watcher")
    got, _, callback = _collector()
    cloud.subscribe("vigia/gw1/#", callback)
    cloud.subscribe(topics.shadow_topic("gw1", "update"), callback)
    gw2 = connect("gw2", f"gw2-{kind}", kind=kind)
    with pytest.raises(PublishRejectedError, match=r"NOT_AUTHORIZED|Not authorized"):
        gw2.publish(topics.candidates("gw1", "cam1"), b"forged")
    with pytest.raises(PublishRejectedError):
        gw2.publish(topics.shadow_topic("gw1", "update"), b'{"state": {"desired": {}}}')
    gw2.publish(topics.candidates("gw2", "cam1"), b"mine")  # its own topic is fine
    time.sleep(0.5)
    assert got == []


def test_gateway_cannot_read_another_gateways_topics(connect):
    gw2 = connect("gw2", "gw2-spy")
    got, _, callback = _collector()
    gw2.subscribe("vigia/gw1/#", callback)
    gw2.subscribe(topics.shadow_topic("gw1", "update/delta"), callback)
    gw2.subscribe("vigia/#", callback)
    time.sleep(0.3)
    cloud = connect("vigia-cloud", "cloud-writer")
    cloud.publish(topics.candidates("gw1", "cam1"), b"secret")
    cloud.publish(topics.shadow_topic("gw1", "update/delta"), b"{}")
    time.sleep(0.7)
    assert got == []


@pytest.mark.parametrize("kind", ["paho", "iotcore"])
def test_certificate_from_another_ca_is_refused(broker, pki, kind):
    transport = make_transport(transport_settings(broker, pki.rogue, f"rogue-{kind}", kind=kind,
                                                  reconnect_min_s=0.2, reconnect_max_s=0.5))
    try:
        with pytest.raises(TransportError):
            transport.connect(timeout=2)
        assert not transport.is_connected
    finally:
        transport.disconnect()


def test_client_without_certificate_is_refused(broker, pki):
    from edge_agent.transport import TlsSettings, TransportSettings

    settings = TransportSettings(kind="paho", thing_name="gw1", client_id="anon", host=broker.host,
                                 port=broker.port, tls=TlsSettings(ca_file=pki.ids["gw1"].ca_file),
                                 reconnect_min_s=0.2, reconnect_max_s=0.5)
    transport = make_transport(settings)
    try:
        with pytest.raises(TransportError):
            transport.connect(timeout=2)
    finally:
        transport.disconnect()
