"""Keeps the ConfigStore in step with the named shadow `vigia-config`, over any Transport.

At start (and after every reconnect) it GETs the whole document and applies `desired`; then it applies
each `update/delta`; after each it publishes `reported` (what runs + refusals). Requests carry a
clientToken so answers meant for someone else on the same topics are ignored.

Work happens on a thread of our own, never on the transport's network thread: a publish waits for its
PUBACK, which that thread delivers.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from typing import Any

from contracts.topics import CONFIG_SHADOW_NAME, shadow_topic
from edge_agent.config_store import ConfigStore
from edge_agent.transport.base import Transport, TransportError

log = logging.getLogger(__name__)


class ShadowRequestError(RuntimeError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"shadow request rejected ({code}): {message}")
        self.code = code


class ShadowSync:
    def __init__(
        self,
        transport: Transport,
        thing_name: str,
        store: ConfigStore,
        shadow_name: str = CONFIG_SHADOW_NAME,
        request_timeout_s: float = 5.0,
    ) -> None:
        self.transport = transport
        self.thing = thing_name
        self.store = store
        self.shadow = shadow_name
        self.request_timeout_s = request_timeout_s
        self._pending: dict[str, tuple[threading.Event, list[Any]]] = {}
        self._pending_lock = threading.Lock()
        self._work: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported_error_keys: set[str] = set()
        self._last_delta_version = -1
        self.synced = threading.Event()  # set after the first successful get + report

    def _topic(self, op: str) -> str:
        return shadow_topic(self.thing, op, self.shadow)

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe and start the worker; the initial sync runs on the worker (retrying until it works)."""
        self.transport.subscribe(self._topic("update/delta"), self._on_delta)
        for op in ("get/accepted", "get/rejected", "update/accepted", "update/rejected"):
            self.transport.subscribe(self._topic(op), self._on_response)
        self._thread = threading.Thread(target=self._run, name=f"shadow-{self.thing}", daemon=True)
        self._thread.start()
        self._work.put(("resync", None))

    def stop(self) -> None:
        self._stop.set()
        self._work.put(("stop", None))
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- network-thread callbacks: only hand over ----------------------------------------------------------
    def _on_delta(self, topic: str, payload: bytes) -> None:
        self._work.put(("delta", payload))

    def _on_response(self, topic: str, payload: bytes) -> None:
        try:
            body = json.loads(payload)
        except ValueError:
            return
        token = body.get("clientToken") if isinstance(body, dict) else None
        with self._pending_lock:
            waiter = self._pending.get(token) if token else None
        if waiter is not None:
            waiter[1].append((topic.rsplit("/", 1)[-1], body))
            waiter[0].set()

    # --- worker ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        was_connected = self.transport.is_connected
        need_sync = False
        while not self._stop.is_set():
            try:
                kind, payload = self._work.get(timeout=1.0)
            except queue.Empty:
                kind, payload = "tick", None
            connected = self.transport.is_connected
            if connected and not was_connected:
                need_sync = True  # deltas published while we were away are lost: read the whole document
            was_connected = connected
            if kind == "stop":
                return
            if kind == "resync":
                need_sync = True
            try:
                if need_sync and connected:
                    self.sync()
                    need_sync = False
                if kind == "delta":
                    self._handle_delta(payload)
            except (TransportError, ShadowRequestError, TimeoutError) as exc:
                log.warning("shadow sync failed, will retry", extra={"thing": self.thing, "error": str(exc)})
                need_sync = True

    def sync(self) -> None:
        """GET the whole document, apply its desired state, report."""
        try:
            doc = self._request("get", {})
        except ShadowRequestError as exc:
            if exc.code != 404:
                raise
            doc = {}  # no shadow yet: our report creates it
        state = doc.get("state") or {}
        desired = state.get("desired")
        if desired is not None:
            self.store.apply(desired, version=doc.get("version"))
            self._last_delta_version = max(self._last_delta_version, int(doc.get("version") or 0))
        self.report(desired)
        self.synced.set()

    def _handle_delta(self, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            state, version = body["state"], int(body.get("version", 0))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("malformed shadow delta ignored", extra={"thing": self.thing, "error": str(exc)})
            return
        if version and version < self._last_delta_version:
            log.info("stale shadow delta ignored", extra={"thing": self.thing, "shadow_version": version})
            return
        self._last_delta_version = max(self._last_delta_version, version)
        self.store.apply(state, version=version or None)
        self.report(state)

    def report(self, desired_shape: dict[str, Any] | None = None) -> None:
        """Publish `reported`: running values at the desired paths, the config version, refusals."""
        reported = self.store.reported_state(desired_shape if isinstance(desired_shape, dict) else None)
        errors: dict[str, Any] = dict(self.store.errors)
        for cleared in self._reported_error_keys - set(errors):
            errors[cleared] = None  # null deletes the key from the shadow
        reported["errors"] = errors or None
        reported["config_version"] = self.store.version
        self._request("update", {"state": {"reported": reported}})
        self._reported_error_keys = set(self.store.errors)

    def _request(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        token = uuid.uuid4().hex
        event: threading.Event = threading.Event()
        answers: list[Any] = []
        with self._pending_lock:
            self._pending[token] = (event, answers)
        try:
            self.transport.publish(self._topic(op), json.dumps({**body, "clientToken": token}).encode())
            if not event.wait(self.request_timeout_s):
                raise TimeoutError(f"no answer to shadow {op} within {self.request_timeout_s}s")
            outcome, answer = answers[0]
        finally:
            with self._pending_lock:
                self._pending.pop(token, None)
        if outcome == "rejected":
            raise ShadowRequestError(int(answer.get("code", 0)), str(answer.get("message", "")))
        return answer
