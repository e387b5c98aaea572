"""Installs each camera's false-positive memory named by its config (`fp_memory: {version, sha256, uri}`).

The cloud writes a new memory version as an artifact and points the camera's desired config at it; when the
running config names a memory the camera does not have, this fetches the artifact, checks it and installs it
with FpMemoryStore.replace. Each CameraSession consults `agent.fp_memories` on every detection, so the next
frame already uses it.

Checks, all before anything is replaced: the document parses as a Vigia memory of this camera, its version is
the one named, its content sha256 (FpMemory.content_sha256) is the one named, and it is not older than what
is installed (a version never goes back). A bad artifact is refused with one log line, once per reference;
the last good memory stays. A fetch that fails (network, store) is retried with a growing delay.

Where artifacts come from: `file://` URIs and plain paths (the embedded default), `https://` (a presigned
URL, read with urllib) and `s3://`. boto3 is not part of the gateway's install: `s3://` imports it lazily and
takes its credentials from the environment (inside Greengrass, the token exchange service provides them).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from contracts import FpMemoryRef, GatewayConfig, redact_uri
from models.fp_memory import FpMemory, FpMemoryStore

log = logging.getLogger("vigia.edge")

MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
FETCH_TIMEOUT_S = 20.0
Outcome = Literal["installed", "current", "refused", "failed"]


class ArtifactRefused(ValueError):
    """The artifact is not the memory the reference names: never installed, not fetched again."""


def fetch_artifact(uri: str, max_bytes: int = MAX_ARTIFACT_BYTES) -> bytes:
    """The artifact's bytes (at most `max_bytes`); OSError (or a boto error) when it cannot be read now."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(urllib.request.url2pathname(parsed.path) if parsed.scheme else uri)
        if path.stat().st_size > max_bytes:
            raise ArtifactRefused(f"artifact is {path.stat().st_size} bytes, over {max_bytes}")
        return path.read_bytes()
    if parsed.scheme in ("https", "http"):
        with urllib.request.urlopen(uri, timeout=FETCH_TIMEOUT_S) as answer:  # scheme checked above
            data = answer.read(max_bytes + 1)
    elif parsed.scheme == "s3":
        try:
            import boto3
        except ImportError as exc:
            raise OSError("s3:// artifacts need boto3 on the gateway (or give an https:// URL)") from exc
        body = boto3.client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
        data = body.read(max_bytes + 1)
    else:
        raise ArtifactRefused(f"artifact URI scheme {parsed.scheme!r} is not supported (file, https, s3)")
    if len(data) > max_bytes:
        raise ArtifactRefused(f"artifact is over {max_bytes} bytes")
    return data


def check_artifact(data: bytes, camera_id: str, ref: FpMemoryRef) -> FpMemory:
    """The memory in `data` if it is exactly what `ref` names for `camera_id`; else ArtifactRefused."""
    try:
        memory = FpMemory.from_document(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactRefused(f"not a readable false-positive memory: {str(exc)[:200]}") from exc
    if memory.camera_id != camera_id:
        raise ArtifactRefused(f"artifact is camera {memory.camera_id!r}'s memory, not {camera_id!r}'s")
    if memory.version != ref.version:
        raise ArtifactRefused(f"artifact holds version {memory.version}, the reference names {ref.version}")
    digest = memory.content_sha256()
    if digest != ref.sha256:
        raise ArtifactRefused(f"sha256 {digest[:12]}… does not match the reference's {ref.sha256[:12]}…")
    return memory


class FpMemorySync:
    """Keeps `memories` at the versions the config names. `reconcile()` once, or `start()` a worker that
    follows a ConfigStore (listener) and retries failed fetches."""

    def __init__(self, config, memories: FpMemoryStore, *, fetch: Callable[[str], bytes] = fetch_artifact,
                 retry_s: float = 30.0, max_retry_s: float = 600.0) -> None:
        self.config = config  # ConfigStore or StaticConfig: anything with `.config` (a GatewayConfig)
        self.memories = memories
        self.fetch = fetch
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._refused: set[tuple[str, int, str]] = set()
        self._lock = threading.Lock()  # one reconcile at a time (listener wake-ups and retries)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ---------------------------------------------------------------------------------
    def wanted(self) -> dict[str, FpMemoryRef]:
        config: GatewayConfig = self.config.config
        return {cam: cfg.fp_memory for cam, cfg in config.cameras.items() if cfg.fp_memory is not None}

    def reconcile(self) -> dict[str, Outcome]:
        """Bring every camera's memory to the version its config names; what happened, per camera."""
        with self._lock:
            return {cam: self._install(cam, ref) for cam, ref in self.wanted().items()}

    def _install(self, camera_id: str, ref: FpMemoryRef) -> Outcome:
        key = (camera_id, ref.version, ref.sha256)
        if key in self._refused:
            return "refused"
        have = self.memories.get(camera_id)
        if ref.version == have.version and ref.sha256 == have.content_sha256():
            return "current"
        where = {"camera_id": camera_id, "fp_memory_version": ref.version, "installed_version": have.version,
                 "uri": redact_uri(ref.uri or "")}
        try:
            if ref.version <= have.version:
                raise ArtifactRefused(f"version {ref.version} is not newer than the installed {have.version}")
            if not ref.uri:
                raise ArtifactRefused("the reference has no uri to fetch it from")
            memory = check_artifact(self.fetch(ref.uri), camera_id, ref)
        except ArtifactRefused as exc:
            self._refused.add(key)
            log.error("fp memory refused; the installed memory stays", extra={**where, "error": str(exc)})
            return "refused"
        except Exception as exc:  # network, store, credentials: worth another try later
            log.warning("fp memory not fetched; will retry", extra={**where, "error": redact_uri(str(exc))[:300]})
            return "failed"
        self.memories.replace(memory)
        log.info("fp memory installed", extra={**where, "entries": len(memory.entries), "sha256": ref.sha256})
        return "installed"

    # -- as a service -----------------------------------------------------------------------------
    def start(self) -> FpMemorySync:
        add_listener = getattr(self.config, "add_listener", None)
        if add_listener is not None:
            add_listener(lambda _config, _version: self._wake.set())  # never fetch on the shadow's thread
        self._wake.set()  # the config loaded at start may already name a memory
        self._thread = threading.Thread(target=self._run, name="fp-memory-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = self.retry_s
        while not self._stop.is_set():
            woken = self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                outcomes = self.reconcile()
            except Exception:  # a bug of ours must not end the worker: the next wake-up tries again
                log.exception("fp memory sync failed")
                outcomes = {"": "failed"}
            if "failed" in outcomes.values():
                delay = self.retry_s if woken else min(delay * 2, self.max_retry_s)
            else:
                delay = self.max_retry_s  # nothing pending: only a config change wakes it early
