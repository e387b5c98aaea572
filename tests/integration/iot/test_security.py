"""Mosquitto as IoT Core: mutual TLS, one certificate per gateway, ACLs that confine each gateway to
its own topics. Over MQTT 5 a forbidden publish gets PUBACK NOT_AUTHORIZED; a forbidden subscription
is granted but delivers nothing, so non-delivery is what is asserted."""

from __future__ import annotations

import itertools
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


Message = tuple[str, bytes]


class Inbox:
    """What one subscriber received, in arrival order, with a bounded wait that returns on arrival."""

    def __init__(self) -> None:
        self._got: list[Message] = []
        self._cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes) -> None:  # the transport's message callback
        with self._cond:
            self._got.append((topic, payload))
            self._cond.notify_all()

    def wait_for(self, message: Message, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: message in self._got, timeout)

    def messages(self, excluding_topic: str = "") -> list[Message]:
        with self._cond:
            return [m for m in self._got if m[0] != excluding_topic]


def await_subscribed(inbox: Inbox, publisher, probe_topic: str, timeout: float = 5.0) -> None:
    """Publish probes on `probe_topic` until the subscriber gets one: its earlier SUBSCRIBEs are then in force
    (a broker handles one connection's packets in order). A probe lost to a subscription still in flight is
    followed by the next one."""
    deadline = time.monotonic() + timeout
    for n in itertools.count():
        probe = (probe_topic, f"probe-{n}".encode())
        publisher.publish(*probe)
        if inbox.wait_for(probe, timeout=min(0.5, max(0.0, deadline - time.monotonic()))):
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"no probe on {probe_topic!r} within {timeout}s: the subscription does not work")


@pytest.mark.parametrize("kind", ["paho", "iotcore"])
def test_gateway_uses_its_own_topics(connect, kind):
    gw1 = connect("gw1", f"gw1-{kind}", kind=kind)
    inbox = Inbox()
    gw1.subscribe(topics.candidates_filter("gw1"), inbox)
    message = (topics.candidates("gw1", "cam1"), b'{"hello": 1}')
    # The SUBSCRIBE went out first on this same connection: the broker applies it before routing the publish.
    gw1.publish(*message)
    assert inbox.wait_for(message)
    assert inbox.messages() == [message]


@pytest.mark.parametrize("kind", ["paho", "iotcore"])
def test_gateway_cannot_publish_to_another_gateways_topics(connect, kind):
    cloud = connect("vigia-cloud", f"cloud-watcher-{kind}")  # one id per case: no session takeover
    inbox = Inbox()
    cloud.subscribe("vigia/gw1/#", inbox)
    cloud.subscribe(topics.shadow_topic("gw1", "update"), inbox)
    probe_topic = topics.candidates("gw1", "probe")
    await_subscribed(inbox, cloud, probe_topic)
    gw1 = connect("gw1", f"gw1-{kind}-owner", kind=kind)
    gw2 = connect("gw2", f"gw2-{kind}", kind=kind)
    with pytest.raises(PublishRejectedError, match=r"NOT_AUTHORIZED|Not authorized"):
        gw2.publish(topics.candidates("gw1", "cam1"), b"forged")
    with pytest.raises(PublishRejectedError):
        gw2.publish(topics.shadow_topic("gw1", "update"), b'{"state": {"desired": {}}}')
    gw2.publish(topics.candidates("gw2", "cam1"), b"mine")  # its own topic is fine
    # Positive control: the owner's message on the same topic reaches the watcher. The broker answered the
    # forgeries before the control was sent, so a forgery it had let through would have arrived first.
    genuine = (topics.candidates("gw1", "cam1"), b"genuine")
    gw1.publish(*genuine)
    assert inbox.wait_for(genuine)
    assert inbox.messages(excluding_topic=probe_topic) == [genuine]


def test_gateway_cannot_read_another_gateways_topics(connect):
    gw2 = connect("gw2", "gw2-spy")
    inbox = Inbox()
    # Filters that name gw1, and wildcards that cover gw1 and gw2 alike: the broker grants them and must
    # deliver gw2's own messages only.
    for topic_filter in ("vigia/gw1/#", topics.shadow_topic("gw1", "update/delta"), "vigia/#",
                         topics.shadow_topic("+", "update/delta")):
        gw2.subscribe(topic_filter, inbox)
    probe_topic = topics.candidates("gw2", "probe")
    await_subscribed(inbox, gw2, probe_topic)
    cloud = connect("vigia-cloud", "cloud-writer")
    forbidden = [(topics.candidates("gw1", "cam1"), b"secret"), (topics.shadow_topic("gw1", "update/delta"), b"{}")]
    # Positive control: the same subscriber, through the same wildcard filters, gets what it may read.
    allowed = [(topics.candidates("gw2", "cam1"), b"yours"),
               (topics.shadow_topic("gw2", "update/delta"), b'{"state": {}}')]
    for message in forbidden + allowed:  # QoS 1: each returns once the broker has routed it, so in this order
        cloud.publish(*message)
    for message in allowed:
        assert inbox.wait_for(message), f"{message[0]} never arrived: the subscription does not work"
    # The forbidden messages were routed before the allowed ones: had they been delivered, they would be here.
    assert inbox.messages(excluding_topic=probe_topic) == allowed


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
