"""Real Mosquitto with IoT Core-style mutual TLS and per-thing ACLs, a PKI made at test time, and the
local shadow service. Nothing secret is committed: every key is generated into tmp dirs here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CLOUD_ID = "vigia-cloud"
THINGS = ("gw1", "gw2")


def pytest_collection_modifyitems(items):
    if not os.path.exists(MOSQUITTO):
        skip = pytest.mark.skip(reason="mosquitto is not installed (apt-get install mosquitto)")
        for item in items:
            if "integration/iot" in str(item.fspath) and "integration" in item.keywords:
                item.add_marker(skip)


# --- PKI ------------------------------------------------------------------------------------------------
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, key, cert: x509.Certificate) -> None:
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class CertAuthority:
    def __init__(self, directory: Path, name: str) -> None:
        self.dir = directory
        self.key = _key()
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = directory / f"{name}.crt"
        _write(directory / name, self.key, self.cert)

    def issue(self, cn: str, server: bool = False) -> tuple[str, str]:
        key = _key()
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        base = self.dir / f"{self.cert.subject.rfc4514_string().split('=')[1]}-{cn}"
        _write(base, key, cert)
        return str(base.with_suffix(".crt")), str(base.with_suffix(".key"))


@dataclass
class Identity:
    name: str
    cert_file: str
    key_file: str
    ca_file: str


@dataclass
class Pki:
    ca: CertAuthority
    server: tuple[str, str]
    ids: dict[str, Identity]
    rogue: Identity  # CN=gw1 but signed by another CA


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertAuthority(directory, "vigia-test-ca")
    ids = {n: Identity(n, *ca.issue(n), str(ca.ca_file)) for n in (*THINGS, CLOUD_ID)}
    other = CertAuthority(directory, "other-ca")
    rogue = Identity("gw1", *other.issue("gw1"), str(ca.ca_file))
    return Pki(ca, ca.issue("localhost", server=True), ids, rogue)


# --- Mosquitto ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ACL = f"""# the cloud side (shadow service, config admin, consumers) may use every topic
user {CLOUD_ID}
topic readwrite #
topic readwrite $aws/#

# every gateway certificate (CN = thing name = username) is confined to its own topics
pattern readwrite vigia/%u/#
pattern readwrite $aws/things/%u/shadow/#
"""


class Broker:
    """One Mosquitto on a fixed port that can be stopped and started again (persistence on)."""

    def __init__(self, directory: Path, pki: Pki) -> None:
        self.dir = directory
        self.port = free_port()
        self.host = "127.0.0.1"
        self.log_file = directory / "mosquitto.log"
        (directory / "acl").write_text(ACL)
        (directory / "mosquitto.conf").write_text(f"""
per_listener_settings true
user root
log_dest file {self.log_file}
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
persistence true
persistence_location {directory}/
autosave_interval 1
listener {self.port} 127.0.0.1
allow_anonymous false
cafile {pki.ca.ca_file}
certfile {pki.server[0]}
keyfile {pki.server[1]}
require_certificate true
use_identity_as_username true
acl_file {directory / "acl"}
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.dir / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()}") from None
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # SIGTERM: mosquitto saves its persistence db
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="session")
def broker(pki, tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("mosquitto"), pki)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def broker_factory(pki, tmp_path_factory):
    made = []

    def make() -> Broker:
        b = Broker(tmp_path_factory.mktemp("mosquitto"), pki)
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def transport_settings(broker: Broker, identity: Identity, client_id: str | None = None, **extra):
    from edge_agent.transport import TlsSettings, TransportSettings

    return TransportSettings(
        kind=extra.pop("kind", "paho"), thing_name=identity.name, client_id=client_id, host=broker.host,
        port=broker.port,
        tls=TlsSettings(ca_file=identity.ca_file, cert_file=identity.cert_file, key_file=identity.key_file),
        **extra,
    )


def cloud_settings(broker: Broker, pki: Pki, client_id: str):
    from cloud.shadow_service import BrokerSettings

    me = pki.ids[CLOUD_ID]
    return BrokerSettings(host=broker.host, port=broker.port, client_id=client_id, ca_file=me.ca_file,
                          cert_file=me.cert_file, key_file=me.key_file)


@pytest.fixture(scope="session")
def shadow_service(broker, pki, tmp_path_factory):
    from cloud.shadow_service import ShadowService, ShadowStore

    service = ShadowService(cloud_settings(broker, pki, "shadow-service"),
                            ShadowStore(tmp_path_factory.mktemp("shadows") / "shadows.json"))
    service.start()
    yield service
    service.stop()


class CandidateConsumer:
    """The cloud's side of a gateway's candidate topics over the real broker (mutual TLS as the cloud
    identity): every candidate received, in arrival order. A context manager; subscribed once entered."""

    def __init__(self, broker: Broker, pki: Pki, client_id: str, thing: str) -> None:
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from contracts import topics

        self.received: list = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._broker = broker
        me = pki.ids[CLOUD_ID]
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self._client.tls_set(ca_certs=me.ca_file, certfile=me.cert_file, keyfile=me.key_file)
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(topics.candidates_filter(thing), qos=1)
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message

    def _on_message(self, client, userdata, message) -> None:
        from contracts import Candidate

        with self._lock:
            self.received.append(Candidate.model_validate_json(message.payload))

    def __enter__(self) -> CandidateConsumer:
        self._client.connect(self._broker.host, self._broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(5), "the candidate consumer's subscription was not granted"
        return self

    def __exit__(self, *exc) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def wait_for(self, count: int, timeout: float = 5.0) -> list:
        """The candidates received once `count` have arrived, or at `timeout` (the caller asserts on them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    break
            time.sleep(0.05)
        with self._lock:
            return list(self.received)
