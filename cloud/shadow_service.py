"""A local Device Shadow service speaking AWS IoT's shadow protocol over any MQTT broker.

The embedded default of the config plane and the stand-in for IoT Core's shadow service in tests
(moto has shadows over HTTP but no broker, so nothing there publishes `update/delta`).

Semantics follow the AWS IoT Core developer guide ("Device Shadow service documents", "Interacting
with shadows"):
- `update`: objects merge key by key, arrays and scalars replace, `null` deletes (a whole section too);
  `version` in the request must equal the current one or the update is rejected with 409; the version
  grows by one per accepted update; `metadata` carries a timestamp for every updated leaf;
- answers go to `<op>/accepted` / `<op>/rejected` ({code, message, clientToken, timestamp});
- `update/documents` carries previous and current documents; `update/delta` the desired values that
  differ from reported, published only when an update touched `desired` (a reported-only update never
  re-sends a delta, which is what keeps a device that refuses a value from looping);
- `get` answers the whole document with `delta`; a missing shadow is 404; `delete` removes it and a
  shadow created again continues the old version numbers;
- 8 KB cap on each of the desired and reported sections (413), clientToken at most 64 bytes;
- a request is sized (128 KB, 413) and its nesting depth counted (32, 400) before it is parsed, and no
  request, however bad, stops the MQTT thread: it gets `<op>/rejected` (500 for a failure of our own).
Documents persist in a JSON file (atomic replace) so a restart keeps versions and state.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.shadow_state import DocumentRefused, find_client_token, merge_state, parse_shadow_json

log = logging.getLogger(__name__)

MAX_STATE_BYTES = 8 * 1024
MAX_TOKEN_BYTES = 64
REQUEST_FILTERS = tuple(f"$aws/things/+/shadow/name/+/{op}" for op in ("update", "get", "delete"))
_REQUEST = re.compile(r"^\$aws/things/([^/]+)/shadow/name/([^/]+)/(update|get|delete)$")


class ShadowError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _metadata(value: Any, ts: int) -> Any:
    if isinstance(value, dict):
        return {k: _metadata(v, ts) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_metadata(v, ts) for v in value]
    return {"timestamp": ts}



def _merge_meta(base: dict[str, Any], patch: dict[str, Any], ts: int) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_meta(out[key], value, ts)
        else:
            out[key] = _metadata(value, ts)
    return out


def compute_delta(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """Desired values that reported does not have, recursively for objects (arrays compare whole)."""
    delta: dict[str, Any] = {}
    for key, want in desired.items():
        have = reported.get(key, _MISSING)
        if isinstance(want, dict) and isinstance(have, dict):
            sub = compute_delta(want, have)
            if sub:
                delta[key] = sub
        elif have is _MISSING or have != want:
            delta[key] = want
    return delta


def _project_meta(delta: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in delta.items():
        m = meta.get(key)
        out[key] = _project_meta(value, m) if isinstance(value, dict) and isinstance(m, dict) else m
    return out


_MISSING = object()


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


class ShadowStore:
    """The shadow documents and their rules, without any transport (unit-testable, thread-safe)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else None
        self._docs: dict[str, dict[str, Any]] = {}
        self._deleted_versions: dict[str, int] = {}
        self._lock = threading.Lock()
        if self.path and self.path.exists():
            body = json.loads(self.path.read_text())
            self._docs, self._deleted_versions = body.get("shadows", {}), body.get("deleted_versions", {})

    @staticmethod
    def key(thing: str, shadow: str) -> str:
        return f"{thing}~{shadow}"

    def get(self, thing: str, shadow: str) -> dict[str, Any]:
        with self._lock:
            doc = self._docs.get(self.key(thing, shadow))
            if doc is None:
                raise ShadowError(404, f"No shadow exists with name: '{thing}~{shadow}'")
            state = {k: v for k, v in doc["state"].items() if v}
            delta = compute_delta(doc["state"].get("desired", {}), doc["state"].get("reported", {}))
            if delta:
                state["delta"] = delta
            metadata = {k: v for k, v in doc["metadata"].items() if v}
            return {"state": state, "metadata": metadata, "version": doc["version"], "timestamp": int(time.time())}

    def update(self, thing: str, shadow: str, request: Any) -> tuple[dict[str, Any], dict[str, Any], dict | None]:
        """Returns (accepted, documents, delta or None)."""
        if not isinstance(request, dict):
            raise ShadowError(400, "Invalid JSON")
        state = request.get("state")
        if not isinstance(state, dict):
            raise ShadowError(400, "Missing required node: state")
        for section, value in state.items():
            if section not in ("desired", "reported"):
                raise ShadowError(400, f"Invalid state node: {section}")
            if value is not None and not isinstance(value, dict):
                raise ShadowError(400, f"State node must be an object: {section}")
        ts = int(time.time())
        with self._lock:
            k = self.key(thing, shadow)
            old = self._docs.get(k)
            current_version = old["version"] if old else self._deleted_versions.get(k, 0)
            if "version" in request and request["version"] != current_version:
                raise ShadowError(409, "Version conflict")
            old_state = old["state"] if old else {"desired": {}, "reported": {}}
            old_meta = old["metadata"] if old else {"desired": {}, "reported": {}}
            new_state, new_meta = dict(old_state), dict(old_meta)
            for section, value in state.items():
                if value is None:
                    new_state[section], new_meta[section] = {}, {}
                else:
                    new_state[section] = merge_state(old_state.get(section, {}), value)
                    new_meta[section] = _merge_meta(old_meta.get(section, {}), value, ts)
            for section in ("desired", "reported"):
                if _size(new_state.get(section, {})) > MAX_STATE_BYTES:
                    raise ShadowError(
                        413, f"The {section} state would exceed the maximum size of {MAX_STATE_BYTES} bytes"
                    )
            version = current_version + 1
            doc = {"state": new_state, "metadata": new_meta, "version": version}
            self._docs[k] = doc
            self._save()
        accepted = {"state": state, "metadata": {s: _metadata(v, ts) if v is not None else None
                                                   for s, v in state.items()},
                    "version": version, "timestamp": ts}
        previous = None
        if old:
            previous = {"state": {s: v for s, v in old["state"].items() if v},
                        "metadata": {s: v for s, v in old["metadata"].items() if v}, "version": old["version"]}
        documents = {
            "previous": previous,
            "current": {"state": {s: v for s, v in new_state.items() if v},
                        "metadata": {s: v for s, v in new_meta.items() if v}, "version": version},
            "timestamp": ts,
        }
        delta_msg = None
        if "desired" in state:
            delta = compute_delta(new_state.get("desired", {}), new_state.get("reported", {}))
            if delta:
                delta_msg = {"state": delta, "metadata": _project_meta(delta, new_meta.get("desired", {})),
                             "version": version, "timestamp": ts}
        return accepted, documents, delta_msg

    def delete(self, thing: str, shadow: str) -> dict[str, Any]:
        with self._lock:
            k = self.key(thing, shadow)
            doc = self._docs.pop(k, None)
            if doc is None:
                raise ShadowError(404, f"No shadow exists with name: '{thing}~{shadow}'")
            self._deleted_versions[k] = doc["version"]
            self._save()
        return {"version": doc["version"], "timestamp": int(time.time())}

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump({"shadows": self._docs, "deleted_versions": self._deleted_versions}, handle)
        os.replace(tmp, self.path)


class BrokerSettings(BaseModel):
    """Where the service (or the config admin) reaches the broker; a cloud identity allowed on `$aws/#`."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="vigia-shadow-service", min_length=1, max_length=128)
    ca_file: str | None = Field(default=None, description="CA of the broker certificate; enables TLS")
    cert_file: str | None = Field(default=None, description="client certificate for mutual TLS")
    key_file: str | None = Field(default=None, description="client key for mutual TLS")
    keepalive_s: int = Field(default=30, ge=5, le=1200)


def make_paho_client(settings: BrokerSettings):
    """A paho 2.x MQTT 5 client, TLS when a CA is given (the cloud side does not import edge_agent)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=mqtt.MQTTv5)
    if settings.ca_file:
        client.tls_set(ca_certs=settings.ca_file, certfile=settings.cert_file, keyfile=settings.key_file,
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.reconnect_delay_set(0.5, 10)
    return client


class ShadowService:
    """Binds a ShadowStore to the broker: requests in, accepted/rejected/delta/documents out."""

    def __init__(self, settings: BrokerSettings, store: ShadowStore | None = None) -> None:
        self.settings = settings
        self.store = store or ShadowStore()
        self._client = make_paho_client(settings)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._ready = threading.Event()

    def start(self, timeout: float = 10.0) -> None:
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()
        if not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError(f"shadow service could not subscribe on {self.settings.host}:{self.settings.port}")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._ready.clear()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("shadow service refused by broker", extra={"reason": str(reason_code)})
            return
        client.subscribe([(f, 1) for f in REQUEST_FILTERS])
        log.info("shadow service listening", extra={"broker": f"{self.settings.host}:{self.settings.port}"})
        self._ready.set()

    def _on_message(self, client, userdata, message) -> None:
        # paho's network thread: whatever a message does, the service must keep answering the next one
        try:
            match = _REQUEST.match(message.topic)
            if not match:
                return
            thing, shadow, op = match.groups()
            for topic, body in self.handle(thing, shadow, op, message.payload):
                client.publish(topic, json.dumps(body).encode(), qos=1)
        except Exception:
            log.exception("shadow request failed", extra={"topic": message.topic[:200]})

    def handle(self, thing: str, shadow: str, op: str, payload: bytes) -> list[tuple[str, dict[str, Any]]]:
        """One request → the messages to publish (pure, so tests can call it without a broker)."""
        return handle_request(self.store, thing, shadow, op, payload)


def handle_request(store: ShadowStore, thing: str, shadow: str, op: str,
                   payload: bytes) -> list[tuple[str, dict[str, Any]]]:
    """One request → the messages to publish. Never raises: a bad request gets `<op>/rejected`."""
    prefix = f"$aws/things/{thing}/shadow/name/{shadow}/{op}"
    token = None
    try:
        try:
            request = parse_shadow_json(payload) if payload else {}
        except DocumentRefused as exc:
            token = find_client_token(payload)  # the sender still deserves an answer to wait on
            raise ShadowError(exc.code, exc.message) from exc
        if isinstance(request, dict):
            token = request.get("clientToken")
            if token is not None and (not isinstance(token, str) or len(token.encode()) > MAX_TOKEN_BYTES):
                token = None
                raise ShadowError(400, f"clientToken must be a string of at most {MAX_TOKEN_BYTES} bytes")
        if op == "get":
            out = [(f"{prefix}/accepted", store.get(thing, shadow))]
        elif op == "delete":
            out = [(f"{prefix}/accepted", store.delete(thing, shadow))]
        else:
            accepted, documents, delta = store.update(thing, shadow, request)
            out = [(f"{prefix}/accepted", accepted), (f"{prefix}/documents", documents)]
            if delta:
                out.append((f"{prefix}/delta", delta))
    except ShadowError as exc:
        log.warning("shadow request rejected", extra={"thing": thing, "shadow": shadow, "op": op,
                                                      "code": exc.code, "error": exc.message})
        out = [(f"{prefix}/rejected", {"code": exc.code, "message": exc.message, "timestamp": int(time.time())})]
    except Exception:
        # a bug, not the client's fault: answer as IoT Core does (500) and keep the documents as they were
        log.exception("shadow request failed", extra={"thing": thing, "shadow": shadow, "op": op})
        out = [(f"{prefix}/rejected", {"code": 500, "message": "Internal service failure",
                                       "timestamp": int(time.time())})]
    if token:
        for _, body in out:
            body["clientToken"] = token
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local AWS IoT shadow service over an MQTT broker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--ca-file")
    parser.add_argument("--cert-file")
    parser.add_argument("--key-file")
    parser.add_argument("--client-id", default="vigia-shadow-service")
    parser.add_argument("--store", type=Path, default=Path("var/shadows.json"), help="JSON file of documents")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    settings = BrokerSettings(host=args.host, port=args.port, client_id=args.client_id, ca_file=args.ca_file,
                              cert_file=args.cert_file, key_file=args.key_file)
    service = ShadowService(settings, ShadowStore(args.store))
    service.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
