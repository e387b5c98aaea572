"""Operator side of remote configuration: write a camera's desired settings into the gateway's named
shadow, after validating them against contracts.CameraConfig, and show desired beside reported.

Two backends with one interface: AWS IoT `iot-data` (boto3; AWS_ENDPOINT_URL points it at moto server
in tests) and MQTT to the local shadow service (cloud.shadow_service).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from cloud.aws import aws_client
from contracts import CameraConfig, GatewayConfig
from contracts.errors import describe_validation_error
from contracts.shadow_state import MAX_SHADOW_DEPTH, DocumentRefused, merge_state, parse_shadow_json
from contracts.topics import CONFIG_SHADOW_NAME, shadow_topic

log = logging.getLogger(__name__)

MAX_DESIRED_BYTES = 8 * 1024  # IoT Core's cap on the desired section of a shadow


class ConflictError(RuntimeError):
    """Someone else updated the shadow between our read and our write (409)."""


class ShadowAccessError(RuntimeError):
    """The shadow could not be reached or used: broker or endpoint down, credentials refused, no answer.
    The message is one line an operator can act on (no secret, no traceback needed)."""


class ShadowBackend(Protocol):
    def get(self, thing: str, shadow: str) -> dict[str, Any] | None:
        """The whole document, or None when the shadow does not exist."""

    def update(self, thing: str, shadow: str, document: dict[str, Any]) -> dict[str, Any]:
        """Send an update request; returns the accepted document or raises (ConflictError on 409)."""


# --- parsing and merging --------------------------------------------------------------------------------
def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """`threshold=0.6 filters.min_area=0.001 tiling=off` → nested dict; values are JSON when they parse.

    `threshold=null` gives None: the shadow deletes the key from desired (AWS null-delete) and the gateway,
    which re-reads the whole document on a deletion, falls back to the default."""
    patch: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected field=value, got {item!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        node = patch
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{key}: {part} is set both as a value and as an object")
        node[parts[-1]] = value
    return patch



def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


@dataclass
class CameraView:
    camera_id: str
    desired: dict[str, Any] = field(default_factory=dict)
    reported: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # path -> (desired, reported)
    error: str | None = None


class ConfigAdmin:
    def __init__(self, backend: ShadowBackend, shadow_name: str = CONFIG_SHADOW_NAME) -> None:
        self.backend = backend
        self.shadow = shadow_name

    def set(
        self,
        thing: str,
        patch: Mapping[str, Any],
        cameras: Iterable[str] = (),
        all_cameras: bool = False,
        defaults: bool = False,
        retries: int = 3,
    ) -> dict[str, Any]:
        """Validate `patch` for every target camera, then write it to desired in one update.

        Optimistic concurrency: the update carries the version we validated against; on 409 we re-read
        and validate again rather than overwrite a concurrent change blindly.
        """
        if not patch:
            raise ValueError("nothing to set: give field=value pairs")
        for attempt in range(retries):
            doc = self.backend.get(thing, self.shadow) or {}
            request = self._build(thing, doc, dict(patch), list(cameras), all_cameras, defaults)
            try:
                accepted = self.backend.update(thing, self.shadow, request)
            except ConflictError:
                log.info("shadow changed meanwhile, validating again", extra={"thing": thing, "attempt": attempt})
                continue
            log.info("desired config written", extra={"thing": thing, "shadow_version": accepted.get("version"),
                                                      "targets": sorted(request["state"]["desired"])})
            return accepted
        raise ConflictError(f"shadow of {thing} kept changing; gave up after {retries} tries")

    def _build(self, thing: str, doc: Mapping[str, Any], patch: dict[str, Any], cameras: list[str],
               all_cameras: bool, defaults: bool) -> dict[str, Any]:
        state = doc.get("state") or {}
        desired, reported = state.get("desired") or {}, state.get("reported") or {}
        targets = list(dict.fromkeys(cameras))
        if all_cameras:
            known = set((desired.get("cameras") or {}) | (reported.get("cameras") or {}))
            if not known:
                raise ValueError(f"{thing} reports no cameras yet; name them with --camera")
            targets = sorted(known | set(targets))
        if not targets and not defaults:
            raise ValueError("say which cameras: --camera ID (repeatable), --all-cameras or --defaults")
        base_defaults = merge_state(CameraConfig().model_dump(mode="json"), desired.get("defaults") or {})
        update: dict[str, Any] = {}
        errors = []
        if defaults:
            try:
                CameraConfig.model_validate(merge_state(base_defaults, patch))
                update["defaults"] = patch
            except ValidationError as exc:
                errors.append(f"defaults: {describe_validation_error(exc)}")
        for cam in targets:
            # what the camera runs with, as far as the shadow tells: defaults < reported < desired < patch
            current = merge_state(base_defaults, (reported.get("cameras") or {}).get(cam) or {})
            current = merge_state(current, (desired.get("cameras") or {}).get(cam) or {})
            try:
                CameraConfig.model_validate(merge_state(current, patch))
            except ValidationError as exc:
                errors.append(f"{cam}: {describe_validation_error(exc)}")
        if targets:
            update["cameras"] = {cam: patch for cam in targets}
            try:
                GatewayConfig.model_validate({"cameras": {cam: {} for cam in targets}})
            except ValidationError as exc:
                errors.append(describe_validation_error(exc))
        if errors:
            raise ValueError("refused before sending: " + " | ".join(errors))
        size = len(json.dumps(merge_state(desired, update), separators=(",", ":")).encode())
        if size > MAX_DESIRED_BYTES:
            raise ValueError(f"desired state would be {size} bytes, over IoT Core's {MAX_DESIRED_BYTES} byte "
                             "shadow cap: set shared values in defaults instead of per camera")
        request: dict[str, Any] = {"state": {"desired": update}}
        if "version" in doc:
            request["version"] = doc["version"]
        return request

    def show(self, thing: str) -> list[CameraView]:
        doc = self.backend.get(thing, self.shadow) or {}
        state = doc.get("state") or {}
        desired, reported = state.get("desired") or {}, state.get("reported") or {}
        errors = reported.get("errors") or {}
        views = []
        names = ["defaults"] if desired.get("defaults") else []
        names += sorted(set(desired.get("cameras") or {}) | set(reported.get("cameras") or {}) | set(errors))
        for cam in names:
            want = desired.get("defaults") if cam == "defaults" else (desired.get("cameras") or {}).get(cam)
            have = reported.get("defaults") if cam == "defaults" else (reported.get("cameras") or {}).get(cam)
            view = CameraView(cam, want or {}, have or {}, error=errors.get(cam))
            flat_have = _flatten(have or {})
            for path, value in _flatten(want or {}).items():
                if path and flat_have.get(path, "<unset>") != value:
                    view.drift[path] = (value, flat_have.get(path, "<unset>"))
            views.append(view)
        return views


def format_views(thing: str, views: list[CameraView], version: Any = None) -> str:
    lines = [f"{thing} ({CONFIG_SHADOW_NAME}" + (f", version {version})" if version is not None else ")")]
    for view in views:
        flag = "DRIFT" if view.drift or view.error else "in sync"
        lines.append(f"  {view.camera_id}: {flag}")
        for path, value in sorted(_flatten(view.desired).items()):
            if not path:
                continue
            have = _flatten(view.reported).get(path, "<unset>")
            mark = "  <-- not applied" if path in view.drift else ""
            lines.append(f"    {path:<28} desired={json.dumps(value):<10} reported={json.dumps(have)}{mark}")
        if view.error:
            lines.append(f"    error: {view.error}")
    return "\n".join(lines)


# --- backends -------------------------------------------------------------------------------------------
class IotDataBackend:
    """boto3 `iot-data` (named shadows via shadowName). The endpoint comes from AWS_ENDPOINT_URL or the
    account's data endpoint; no test branch here. Endpoint and credential problems are ShadowAccessError."""

    def __init__(self, client: Any | None = None, region: str | None = None) -> None:
        from botocore.exceptions import BotoCoreError

        try:
            self.client = aws_client("iot-data", client, region_name=region)
        except BotoCoreError as exc:  # no region, no endpoint
            raise ShadowAccessError(f"AWS IoT data endpoint unusable: {exc}") from exc

    def _call(self, what: str, call: Any, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = call(**kwargs)
        except self.client.exceptions.ConflictException as exc:
            raise ConflictError(str(exc)) from exc
        except self.client.exceptions.ResourceNotFoundException:
            raise
        except (BotoCoreError, ClientError) as exc:  # no credentials, access denied, endpoint unreachable
            raise ShadowAccessError(f"AWS IoT shadow {what} failed: {exc}") from exc
        return _parse_answer(response["payload"].read())

    def get(self, thing: str, shadow: str) -> dict[str, Any] | None:
        try:
            return self._call("get", self.client.get_thing_shadow, thingName=thing, shadowName=shadow)
        except self.client.exceptions.ResourceNotFoundException:
            return None

    def update(self, thing: str, shadow: str, document: dict[str, Any]) -> dict[str, Any]:
        return self._call("update", self.client.update_thing_shadow, thingName=thing, shadowName=shadow,
                          payload=json.dumps(document).encode())


def _parse_answer(payload: bytes) -> dict[str, Any]:
    """A shadow service's answer, read with the same size and depth bounds as every shadow message
    (answers carry metadata, a few levels deeper than the state they describe)."""
    try:
        body = parse_shadow_json(payload, max_depth=MAX_SHADOW_DEPTH + 8)
    except DocumentRefused as exc:
        raise ShadowAccessError(f"shadow answer refused: {exc.message}") from exc
    if not isinstance(body, dict):
        raise ShadowAccessError(f"shadow answer is a JSON {type(body).__name__}, expected an object")
    return body


class MqttShadowBackend:
    """The shadow protocol over MQTT (local shadow service, or IoT Core itself with a cloud identity).
    Broker, TLS and credential problems are ShadowAccessError."""

    def __init__(self, settings: Any, timeout_s: float = 5.0) -> None:
        from cloud.shadow_service import make_paho_client

        self.settings = settings
        self.timeout_s = timeout_s
        where = f"the broker at {settings.host}:{settings.port}"
        try:
            self._client = make_paho_client(settings)
        except (OSError, ValueError) as exc:  # CA, certificate or key file missing or unreadable
            raise ShadowAccessError(f"cannot use the TLS files for {where}: {exc}") from exc
        self._answers: dict[str, tuple[threading.Event, list[tuple[str, dict[str, Any]]]]] = {}
        self._lock = threading.Lock()
        self._subscribed: set[str] = set()
        self._client.on_message = self._on_message
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            if reason.is_failure:
                refused.append(f"refused ({reason})")
            connected.set()

        def on_disconnect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            if not connected.is_set():  # closed before CONNACK: with TLS 1.3 a refused certificate shows so
                refused.append(f"connection closed before it was accepted, certificate refused? ({reason})")
                connected.set()

        self._client.on_connect = on_connect
        self._client.on_disconnect = on_disconnect
        try:
            self._client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
        except OSError as exc:  # refused, unreachable, TLS handshake (certificate) failure
            raise ShadowAccessError(f"cannot connect to {where}: {exc}") from exc
        self._client.loop_start()
        if not connected.wait(timeout_s) or refused:
            self.close()
            reason = refused[0] if refused else f"no answer within {timeout_s}s"
            raise ShadowAccessError(f"cannot connect to {where}: {reason}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttShadowBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_message(self, client, userdata, message) -> None:
        try:  # paho's network thread: a bad answer must not stop it
            body = _parse_answer(message.payload)
        except ShadowAccessError:
            return
        with self._lock:
            waiter = self._answers.get(body.get("clientToken"))
        if waiter:
            waiter[1].append((message.topic.rsplit("/", 1)[-1], body))
            waiter[0].set()

    def _request(self, thing: str, shadow: str, op: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        for outcome in ("accepted", "rejected"):
            topic = shadow_topic(thing, f"{op}/{outcome}", shadow)
            if topic not in self._subscribed:
                done = threading.Event()
                self._client.on_subscribe = lambda c, u, mid, rc, p, d=done: d.set()
                self._client.subscribe(topic, qos=1)
                done.wait(self.timeout_s)
                self._subscribed.add(topic)
        token = uuid.uuid4().hex
        event, answers = threading.Event(), []
        with self._lock:
            self._answers[token] = (event, answers)
        try:
            try:
                info = self._client.publish(shadow_topic(thing, op, shadow),
                                            json.dumps({**body, "clientToken": token}).encode(), qos=1)
                info.wait_for_publish(self.timeout_s)
            except (RuntimeError, ValueError) as exc:  # paho: not connected, or its queue is full
                raise ShadowAccessError(f"shadow {op} on {thing} not sent: {exc}") from exc
            if not event.wait(self.timeout_s):
                raise ShadowAccessError(
                    f"no answer from the shadow service to {op} on {thing} within {self.timeout_s}s")
            return answers[0]
        finally:
            with self._lock:
                self._answers.pop(token, None)

    def get(self, thing: str, shadow: str) -> dict[str, Any] | None:
        outcome, body = self._request(thing, shadow, "get", {})
        if outcome == "rejected":
            if body.get("code") == 404:
                return None
            raise ShadowAccessError(f"shadow get rejected: {body.get('code')} {body.get('message')}")
        return body

    def update(self, thing: str, shadow: str, document: dict[str, Any]) -> dict[str, Any]:
        outcome, body = self._request(thing, shadow, "update", document)
        if outcome == "rejected":
            if body.get("code") == 409:
                raise ConflictError(body.get("message", "Version conflict"))
            raise ValueError(f"shadow update rejected: {body.get('code')} {body.get('message')}")
        return body
