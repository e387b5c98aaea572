"""ShadowSync against poison: the real shadow rules (cloud.shadow_service.handle_request on a ShadowStore)
behind the Transport interface without a broker, a real ConfigStore and real pydantic documents.

What must hold: nothing in a shadow message stops the worker; refusals are reported and cleared when their
keys go; `reported` stays under 8 KB; a 413 is never retried in a loop."""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from typing import Any

import pytest

import cloud.shadow_service as shadow_service
from cloud.shadow_service import ShadowStore, handle_request
from contracts import CameraConfig
from contracts.topics import CONFIG_SHADOW_NAME, shadow_topic
from edge_agent.config_store import ConfigStore
from edge_agent.shadow_sync import ShadowSync
from tests.waiting import wait_for as _wait_for

wait_for = functools.partial(_wait_for, timeout=5.0)

_REQUEST = re.compile(r"^\$aws/things/([^/]+)/shadow/name/([^/]+)/(update|get|delete)$")
DELTA = shadow_topic("gw1", "update/delta")


class LoopbackShadow:
    """A Transport whose 'broker' hands shadow requests straight to the local shadow service's rules and
    delivers the answers (accepted/rejected/delta) to the subscribers, on the publishing thread."""

    def __init__(self) -> None:
        self.store = ShadowStore()
        self.subscribers: dict[str, list[Any]] = {}
        self.rejected: list[int] = []
        self.is_connected = True
        self._lock = threading.Lock()

    def connect(self, timeout: float = 10.0) -> None:
        self.is_connected = True

    def disconnect(self) -> None:
        self.is_connected = False

    def subscribe(self, topic_filter: str, callback, qos: int = 1) -> None:
        self.subscribers.setdefault(topic_filter, []).append(callback)

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        match = _REQUEST.match(topic)
        if match:
            with self._lock:
                answers = handle_request(self.store, *match.groups(), payload)
            for answer_topic, body in answers:
                if answer_topic.endswith("/rejected"):
                    self.rejected.append(body["code"])
                self.deliver(answer_topic, json.dumps(body).encode())

    def deliver(self, topic: str, payload: bytes) -> None:
        for callback in list(self.subscribers.get(topic, ())):
            callback(topic, payload)

    # --- the operator's side ------------------------------------------------------------------------------
    def set_desired(self, desired: dict[str, Any]) -> None:
        self.publish(shadow_topic("gw1", "update"), json.dumps({"state": {"desired": desired}}).encode())

    def reported(self) -> dict[str, Any]:
        return self.store.get("gw1", CONFIG_SHADOW_NAME)["state"].get("reported", {})


class FlakyStore(ConfigStore):
    """A ConfigStore with a bug that shows once: `fail_next` is raised by the next apply."""

    fail_next: BaseException | None = None

    def apply(self, *args: Any, **kwargs: Any):
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        return super().apply(*args, **kwargs)


@pytest.fixture
def shadow() -> LoopbackShadow:
    return LoopbackShadow()


@pytest.fixture
def make_sync(shadow, tmp_path):
    made: list[ShadowSync] = []

    def make(store: ConfigStore | None = None, **options: Any) -> ShadowSync:
        sync = ShadowSync(shadow, "gw1", store or FlakyStore(tmp_path / "config.json"), **options)
        sync.start()
        made.append(sync)
        return sync

    yield make
    for sync in made:
        sync.stop()


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def test_hundreds_of_unknown_keys_stay_under_8kb_and_clear_when_the_keys_go(shadow, make_sync):
    # an older agent left one error per unknown key in reported
    shadow.store.update("gw1", CONFIG_SHADOW_NAME, {"state": {"reported": {
        "errors": {f"old{i:03d}": "unknown field (expected defaults, cameras)" for i in range(120)}}}})
    unknown = {f"k{i:03d}": 1 for i in range(300)}
    shadow.set_desired(unknown | {"cameras": {"cam1": {f"x{i:03d}": 1 for i in range(200)},
                                              "cam2": {"threshold": 0.7}}})
    sync = make_sync()
    assert sync.synced.wait(5)
    store = sync.store
    assert store.for_camera("cam2").threshold == 0.7  # the valid part applies
    assert store.for_camera("cam1") == CameraConfig()  # the poisoned camera keeps its last good value
    assert set(store.errors) == {"_unknown", "cam1"}
    assert store.errors["_unknown"].startswith("300 unknown fields refused (expected schema_version, defaults, "
                                               "cameras): 'k000', 'k001', 'k002', 'k003', 'k004' (+295 more)")
    assert store.errors["cam1"].endswith("(+195 more)")
    reported = shadow.reported()
    assert _size(reported) < 8192 and 413 not in shadow.rejected
    assert reported["error_count"] == 2 and set(reported["errors"]) == {"_unknown", "cam1"}  # old ones gone
    assert reported["cameras"]["cam2"]["threshold"] == 0.7

    # the operator deletes the bad keys: no delta is published for a deletion, the agent re-reads anyway
    shadow.set_desired({k: None for k in unknown} | {"cameras": {"cam1": None}})
    assert wait_for(lambda: store.errors == {})
    assert wait_for(lambda: "errors" not in shadow.reported())
    assert "error_count" not in shadow.reported() and sync.alive


def test_nesting_10000_deep_and_an_oversized_delta_are_refused_and_the_worker_lives_on(shadow, make_sync):
    sync = make_sync()
    assert sync.synced.wait(5)
    shadow.deliver(DELTA, b'{"state":' * 10_000 + b"1" + b"}" * 10_000)
    assert wait_for(lambda: "_document" in sync.store.errors)
    assert sync.store.errors["_document"] == (
        "shadow delta refused: JSON contains too many levels of nesting; maximum is 40")
    assert wait_for(lambda: "_document" in (shadow.reported().get("errors") or {}))
    shadow.deliver(DELTA, b'{"state":{"cameras":{"cam1":{"model_version":"' + b"v" * 300_000 + b'"}}}}')
    assert wait_for(lambda: "exceeds the maximum size" in sync.store.errors.get("_document", ""))
    assert sync.alive

    shadow.set_desired({"cameras": {"cam1": {"threshold": 0.66}}})
    assert wait_for(lambda: sync.store.for_camera("cam1").threshold == 0.66)
    assert wait_for(lambda: "errors" not in shadow.reported())  # refusal cleared by the good document
    assert sync.store.errors == {} and sync.restarts == 0


def test_a_failure_while_applying_is_reported_and_the_next_delta_applies(shadow, make_sync, tmp_path):
    store = FlakyStore(tmp_path / "config.json")
    sync = make_sync(store)
    assert sync.synced.wait(5)
    store.fail_next = RuntimeError("boom")
    shadow.set_desired({"cameras": {"cam1": {"threshold": 0.6}}})
    assert wait_for(lambda: "_internal" in store.errors)
    assert store.errors["_internal"] == "applying the delta failed: RuntimeError: boom"
    assert store.for_camera("cam1") == CameraConfig()  # last good config kept
    assert wait_for(lambda: (shadow.reported().get("errors") or {}).get("_internal") == store.errors["_internal"])
    assert sync.alive

    shadow.set_desired({"cameras": {"cam1": {"threshold": 0.7}}})
    assert wait_for(lambda: store.for_camera("cam1").threshold == 0.7)
    assert wait_for(lambda: "errors" not in shadow.reported())
    assert store.errors == {}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread ends on purpose
def test_a_worker_thread_that_ends_is_started_again_by_the_next_message(shadow, make_sync, tmp_path):
    store = FlakyStore(tmp_path / "config.json")
    sync = make_sync(store)
    assert sync.synced.wait(5)
    store.fail_next = SystemExit(3)  # escapes every `except Exception`: the thread ends, as a thread silently does
    shadow.set_desired({"cameras": {"cam1": {"threshold": 0.6}}})
    assert wait_for(lambda: not sync.alive)
    shadow.set_desired({"cameras": {"cam1": {"sample_fps": 2}}})  # its delta wakes the watchdog
    assert wait_for(lambda: store.for_camera("cam1").sample_fps == 2)
    assert store.for_camera("cam1").threshold == 0.6  # the restarted worker re-read the whole document
    assert sync.restarts == 1 and sync.alive


def test_null_delete_falls_back_to_the_default(shadow, make_sync):
    sync = make_sync()
    assert sync.synced.wait(5)
    shadow.set_desired({"cameras": {"cam1": {"threshold": 0.6, "sample_fps": 2}}})
    assert wait_for(lambda: sync.store.for_camera("cam1").sample_fps == 2)
    shadow.set_desired({"cameras": {"cam1": {"threshold": None}}})
    assert wait_for(lambda: sync.store.for_camera("cam1").threshold == 0.5)
    assert sync.store.for_camera("cam1").sample_fps == 2
    shadow.set_desired({"cameras": {"cam1": {"sample_fps": None}}})  # desired is empty now
    assert wait_for(lambda: "cam1" not in sync.store.config.cameras)
    assert sync.store.for_camera("cam1") == CameraConfig()
    assert wait_for(lambda: "cam1" not in shadow.reported().get("cameras", {}))  # stale reported paths deleted


def test_reported_refused_as_too_large_is_rewritten_whole_once(shadow, make_sync):
    sync = make_sync()
    assert sync.synced.wait(5)
    # someone else fills reported almost to the cap after our sync
    room = 8192 - _size(shadow.reported()) - len(',"junk":""')
    shadow.store.update("gw1", CONFIG_SHADOW_NAME, {"state": {"reported": {"junk": "x" * room}}})
    shadow.set_desired({"cameras": {"cam1": {"threshold": 0.6}}})
    assert wait_for(lambda: shadow.reported().get("cameras", {}).get("cam1", {}).get("threshold") == 0.6)
    assert shadow.rejected.count(413) == 1
    assert "junk" not in shadow.reported() and sync.store.errors == {}


def test_reported_that_never_fits_backs_off_instead_of_looping(shadow, make_sync, monkeypatch):
    monkeypatch.setattr(shadow_service, "MAX_STATE_BYTES", 20)  # no report can fit
    sync = make_sync(retry_min_s=30.0)
    assert wait_for(lambda: sync._failures == 1)
    # full report, then rewritten whole, then minimal: three refusals, then a wait of 15-30 s
    assert shadow.rejected.count(413) == 3
    assert sync._retry_at - time.monotonic() > 10
    assert not sync.synced.is_set() and sync.alive
