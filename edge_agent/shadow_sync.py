"""Keeps the ConfigStore in step with the named shadow `vigia-config`, over any Transport.

At start, after every reconnect, every `resync_interval_s`, and whenever the operator deletes desired keys
(their `update/accepted` carries nulls; a deletion publishes no delta), it GETs the whole document and
applies `desired` as the whole truth; in between it applies each `update/delta`; after each it publishes
`reported` (what runs + refusals). Requests carry a clientToken so answers meant for someone else on the
same topics are ignored.

Nothing a shadow message contains can stop it (DESIGN.md "bad input keeps the last good state"):
- every message is sized and its nesting depth counted before it is parsed (`parse_shadow_json`);
- a failure while applying is caught, logged and put in `reported.errors`; the worker goes on, and a
  supervisor restarts its loop (and `ensure_running` its thread) should anything still escape;
- `reported` stays under IoT's 8 KB: errors are summarised (a count and the first few, each shortened);
  a 413 makes it rewrite `reported` whole, then minimal, and then back off, logging once;
- failed requests are retried with exponential backoff and jitter, never in a tight loop.

Work happens on a thread of our own, never on the transport's network thread: a publish waits for its
PUBACK, which that thread delivers.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from contracts.errors import truncate
from contracts.shadow_state import (
    MAX_SHADOW_DEPTH,
    DocumentRefused,
    find_client_token,
    parse_shadow_json,
)
from contracts.topics import CONFIG_SHADOW_NAME, shadow_topic
from edge_agent.config_store import DOCUMENT_ERROR, INTERNAL_ERROR, ApplyResult, ConfigStore
from edge_agent.transport.base import Transport, TransportError

log = logging.getLogger(__name__)

# Answers wrap desired in `state`/`metadata` and each leaf in {"timestamp": ...}: allow a few more levels
# than the shadow service accepts in a request.
MAX_MESSAGE_DEPTH = MAX_SHADOW_DEPTH + 8
MAX_STATE_BYTES = 8 * 1024  # IoT Core's cap on the reported section
REPORTED_BUDGET_BYTES = MAX_STATE_BYTES - 512  # room for what others may have written beside us
REPORTED_ERRORS = 5  # errors shown in `reported`; `error_count` says how many there are
REPORTED_ERROR_CHARS = 160
MAX_QUEUED = 64  # deltas waiting for the worker; past that one full GET supersedes them all


class ShadowRequestError(RuntimeError):
    def __init__(self, code: int, message: str, refused_here: bool = False) -> None:
        super().__init__(f"shadow request rejected ({code}): {message}")
        self.code = code
        self.message = message
        self.refused_here = refused_here  # the answer itself failed our size/depth/JSON checks


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, Mapping) and any(_has_null(v) for v in value.values())


def _stale_paths(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Null-deletes for every path of `current` that `new` no longer has."""
    out: dict[str, Any] = {}
    for key, value in current.items():
        if key not in new:
            out[key] = None
        elif isinstance(value, Mapping) and isinstance(new[key], Mapping):
            sub = _stale_paths(value, new[key])
            if sub:
                out[key] = sub
    return out


def _with(body: dict[str, Any], nulls: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for key, value in nulls.items():
        if value is None:
            out.setdefault(key, None)
        elif isinstance(out.get(key), Mapping):
            out[key] = _with(out[key], value)
    return out


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


class ShadowSync:
    def __init__(
        self,
        transport: Transport,
        thing_name: str,
        store: ConfigStore,
        shadow_name: str = CONFIG_SHADOW_NAME,
        request_timeout_s: float = 5.0,
        resync_interval_s: float = 300.0,
        retry_min_s: float = 1.0,
        retry_max_s: float = 60.0,
    ) -> None:
        self.transport = transport
        self.thing = thing_name
        self.store = store
        self.shadow = shadow_name
        self.request_timeout_s = request_timeout_s
        self.resync_interval_s = resync_interval_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self._pending: dict[str, tuple[threading.Event, list[Any]]] = {}
        self._pending_lock = threading.Lock()
        self._work: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=MAX_QUEUED)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._published_error_keys: set[str] = set()
        self._last_delta_version = -1
        self._need_sync = False
        self._last_sync = 0.0
        self._failures = 0
        self._retry_at = 0.0
        self.restarts = 0  # times the worker loop or thread had to be started again
        self.synced = threading.Event()  # set after the first successful get + report

    def _topic(self, op: str) -> str:
        return shadow_topic(self.thing, op, self.shadow)

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe and start the worker; the initial sync runs on the worker (retrying until it works)."""
        self.transport.subscribe(self._topic("update/delta"), self._on_delta)
        for op in ("get/accepted", "get/rejected", "update/accepted", "update/rejected"):
            self.transport.subscribe(self._topic(op), self._on_response)
        self._need_sync = True
        self._start_thread()
        self._enqueue("resync", None)  # wake the worker now rather than at its first tick

    def stop(self) -> None:
        self._stop.set()
        self._enqueue("stop", None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ensure_running(self) -> bool:
        """Start the worker thread again if it ended without `stop` (True when it had to)."""
        with self._thread_lock:
            if self._stop.is_set() or self._thread is None or self._thread.is_alive():
                return False
            self.restarts += 1
            log.error("shadow sync thread had ended; starting it again",
                      extra={"thing": self.thing, "restarts": self.restarts})
            self._need_sync = True  # what happened meanwhile is unknown: read the whole document
            self._start_thread()
            return True

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name=f"shadow-{self.thing}", daemon=True)
        self._thread.start()

    def _enqueue(self, kind: str, payload: Any) -> None:
        try:
            self._work.put_nowait((kind, payload))
        except queue.Full:
            # a flood of deltas: one GET of the whole document stands for all of them
            self._need_sync = True

    # --- network-thread callbacks: only hand over; never raise into the transport ------------------------
    def _on_delta(self, topic: str, payload: bytes) -> None:
        self._enqueue("delta", payload)
        self.ensure_running()

    def _on_response(self, topic: str, payload: bytes) -> None:
        try:
            self._route_response(topic, payload)
        except Exception:
            log.exception("shadow answer could not be handled", extra={"thing": self.thing, "topic": topic})
        self.ensure_running()

    def _route_response(self, topic: str, payload: bytes) -> None:
        outcome = topic.rsplit("/", 1)[-1]
        try:
            body = parse_shadow_json(payload, max_depth=MAX_MESSAGE_DEPTH)
        except DocumentRefused as exc:
            token = find_client_token(payload)
            self._deliver(token, "refused", {"code": exc.code, "message": exc.message})
            log.warning("shadow answer refused", extra={"thing": self.thing, "topic": topic, "error": exc.message})
            return
        token = body.get("clientToken") if isinstance(body, dict) else None
        if self._deliver(token, outcome, body):
            return
        # someone else's update (the operator's): a deletion in desired publishes no delta, so re-read
        state = body.get("state") if isinstance(body, dict) else None
        if outcome == "accepted" and topic.endswith("/update/accepted") and isinstance(state, dict) \
                and "desired" in state and _has_null(state["desired"]):
            log.info("desired keys deleted; reading the whole shadow", extra={"thing": self.thing})
            self._enqueue("resync", None)

    def _deliver(self, token: Any, outcome: str, body: Any) -> bool:
        if not isinstance(token, str):
            return False
        with self._pending_lock:
            waiter = self._pending.get(token)
        if waiter is None:
            return False
        waiter[1].append((outcome, body))
        waiter[0].set()
        return True

    # --- worker ------------------------------------------------------------------------------------------
    def _supervise(self) -> None:
        """The thread's body: a failure that escapes a step restarts the loop, never ends the thread."""
        while not self._stop.is_set():
            try:
                self._run()
                return
            except Exception:
                self.restarts += 1
                log.exception("shadow sync loop failed; restarting it",
                              extra={"thing": self.thing, "restarts": self.restarts})
                self._need_sync = True
                self._stop.wait(min(self.retry_max_s, self.retry_min_s * 2 ** min(self.restarts, 10)))

    def _run(self) -> None:
        was_connected = self.transport.is_connected
        while not self._stop.is_set():
            try:
                kind, payload = self._work.get(timeout=1.0)
            except queue.Empty:
                kind, payload = "tick", None
            if kind == "stop":
                return
            connected = self.transport.is_connected
            if connected and not was_connected:
                self._need_sync = True  # deltas published while we were away are lost: read the whole document
            was_connected = connected
            if kind == "resync":
                self._need_sync = True
            elif kind == "delta":
                self._step(self._handle_delta, payload)
            now = time.monotonic()
            if self.resync_interval_s and self._last_sync and now - self._last_sync >= self.resync_interval_s:
                self._need_sync = True
            if self._need_sync and connected and now >= self._retry_at:
                self._step(self.sync)

    def _step(self, action: Callable[..., None], *args: Any) -> None:
        try:
            action(*args)
        except (TransportError, ShadowRequestError, TimeoutError) as exc:
            self._failed(exc)
        except Exception as exc:
            log.exception("shadow sync step failed", extra={"thing": self.thing})
            self._failed(exc)
        else:
            if self._failures:
                log.info("shadow sync recovered", extra={"thing": self.thing, "failures": self._failures})
            self._failures, self._retry_at = 0, 0.0

    def _failed(self, exc: Exception) -> None:
        """Back off (exponential, jittered); warn on the first failure of a run of them only."""
        self._need_sync = True
        self._failures += 1
        # a `reported` refused as too large even when minimal will not fit sooner: wait much longer
        cap = self.retry_max_s * (10 if getattr(exc, "code", None) == 413 else 1)
        delay = min(cap, self.retry_min_s * 2 ** min(self._failures - 1, 16))
        self._retry_at = time.monotonic() + delay * random.uniform(0.5, 1.0)
        extra = {"thing": self.thing, "error": str(exc)[:300], "failures": self._failures,
                 "code": getattr(exc, "code", None)}
        if self._failures == 1:
            log.warning("shadow sync failed; retrying with backoff", extra=extra)
        else:
            log.debug("shadow sync failed again", extra=extra)

    def _apply(self, desired: Any, version: int | None, full: bool) -> ApplyResult | None:
        try:
            return self.store.apply(desired, version=version, full=full)
        except Exception as exc:
            # a failure of ours, not the operator's: keep the last good config, say so in `reported`
            log.exception("applying shadow config failed; last good config kept",
                          extra={"thing": self.thing, "shadow_version": version})
            what = "document" if full else "delta"
            self.store.refuse(INTERNAL_ERROR, f"applying the {what} failed: {type(exc).__name__}: {exc}", version)
            return None

    def sync(self) -> None:
        """GET the whole document, apply its desired state as the whole truth, report."""
        try:
            doc: dict[str, Any] | None = self._request("get", {})
        except ShadowRequestError as exc:
            if exc.code == 404:
                doc = None  # no shadow yet: keep what runs; our report creates it
            elif exc.refused_here:
                self.store.refuse(DOCUMENT_ERROR, f"shadow document refused: {exc.message}")
                self.report()
                raise
            else:
                raise
        current: dict[str, Any] = {}
        desired: Any = None
        if doc is not None:
            state = doc.get("state") if isinstance(doc.get("state"), dict) else {}
            # an existing shadow without `desired` asks for nothing: every key was deleted
            desired = state.get("desired", {})
            current = state["reported"] if isinstance(state.get("reported"), dict) else {}
            version = doc.get("version") if isinstance(doc.get("version"), int) else None
            self._apply(desired, version, full=True)
            self._last_delta_version = max(self._last_delta_version, version or 0)
        self.report(desired if isinstance(desired, dict) else None, current=current)
        self._need_sync = False
        self._last_sync = time.monotonic()
        self.synced.set()

    def _handle_delta(self, payload: bytes) -> None:
        try:
            body = parse_shadow_json(payload, max_depth=MAX_MESSAGE_DEPTH)
        except DocumentRefused as exc:
            log.warning("shadow delta refused", extra={"thing": self.thing, "code": exc.code, "error": exc.message})
            self.store.refuse(DOCUMENT_ERROR, f"shadow delta refused: {exc.message}")
            self.report()
            return
        state = body.get("state") if isinstance(body, dict) else None
        version = body.get("version") if isinstance(body, dict) else None
        version = version if isinstance(version, int) and not isinstance(version, bool) and version > 0 else 0
        if version and version < self._last_delta_version:
            log.info("stale shadow delta ignored", extra={"thing": self.thing, "shadow_version": version})
            return
        self._last_delta_version = max(self._last_delta_version, version)
        result = self._apply(state, version or None, full=False)
        self.report(state if isinstance(state, dict) else None)
        if result is not None and result.unsettled:
            # refusals this delta did not restate may belong to keys deleted since: the GET will tell
            self._need_sync = True

    # --- reported ----------------------------------------------------------------------------------------
    def _reported_body(self, running: dict[str, Any], errors: dict[str, str], level: int) -> dict[str, Any]:
        """Level 0: what runs + the first errors; 1: one short error; 2: no per-camera detail at all."""
        shown, chars = ((REPORTED_ERRORS, REPORTED_ERROR_CHARS), (1, 80), (1, 80))[level]
        body = dict(running) if level < 2 else {"schema_version": running.get("schema_version", 1)}
        # document-level refusals ("_document", "_unknown"...) first: they say the most
        first = sorted(errors, key=lambda k: (not k.startswith("_"), k))[:shown]
        body["errors"] = {truncate(k, 64): truncate(errors[k], chars) for k in first} or None
        body["error_count"] = len(errors) or None
        body["config_version"] = self.store.version
        return body

    def report(self, desired_shape: dict[str, Any] | None = None, current: dict[str, Any] | None = None) -> None:
        """Publish `reported`: running values at the desired paths, the config version, refusals.

        `current` (the reported section a GET returned) makes this a whole rewrite: every path no longer
        reported is deleted, so nothing stale (old errors, cameras gone) stays in the shadow."""
        running = self.store.reported_state(desired_shape if isinstance(desired_shape, dict) else None)
        errors = self.store.errors
        level = next((n for n in (0, 1) if _size(self._reported_body(running, errors, n)) <= REPORTED_BUDGET_BYTES), 2)
        body = self._reported_body(running, errors, level)
        if current is not None:
            nulls = _stale_paths(current, body)
        else:
            shown = set(body["errors"] or ())
            nulls = {"errors": {k: None for k in self._published_error_keys - shown}} if body["errors"] else {}
        first = _with(body, nulls)
        attempts = [(False, first)] if _size(first) <= REPORTED_BUDGET_BYTES else []
        attempts += [(True, body), (True, self._reported_body(running, errors, 2))]
        for n, (clear, document) in enumerate(attempts):
            try:
                if clear:  # start `reported` afresh: whatever else is in it may be what is too large
                    self._request("update", {"state": {"reported": None}})
                self._request("update", {"state": {"reported": document}})
            except ShadowRequestError as exc:
                if exc.code != 413 or n == len(attempts) - 1:
                    raise
                log.warning("reported state too large for the shadow; summarising harder",
                            extra={"thing": self.thing, "attempt": n + 1, "bytes": _size(document)})
                continue
            self._published_error_keys = {k for k, v in (document.get("errors") or {}).items() if v is not None}
            return

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
        if outcome == "refused":
            raise ShadowRequestError(answer["code"], answer["message"], refused_here=True)
        if outcome == "rejected" or not isinstance(answer, dict):
            answer = answer if isinstance(answer, dict) else {}
            code = answer.get("code")
            raise ShadowRequestError(code if isinstance(code, int) else 0, str(answer.get("message", ""))[:300])
        return answer
