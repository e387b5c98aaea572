"""Telling a gateway about its camera's new false-positive memory: `fp_memory` in the camera's desired config.

The reference goes through the same ConfigAdmin as `vigia config set` (validated against CameraConfig, under
the shadow's size cap, optimistic on the shadow version), over one of three backends:
- AWS IoT `iot-data` (AWS mode), or MQTT to the local shadow service (cloud.config_admin);
- `LocalShadowBackend`: the same shadow documents and rules (cloud.shadow_service.ShadowStore) in a JSON file
  under the cloud's data dir, for the embedded default with no broker. The demo's gateway reads its desired
  config from that file at start, as a connected gateway would GET its shadow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cloud.config_admin import ConfigAdmin, ConflictError, ShadowBackend
from cloud.shadow_service import ShadowError, ShadowStore
from contracts import FpMemoryRef

log = logging.getLogger(__name__)

SHADOWS_FILE = "shadows.json"


class RefPublisher(Protocol):
    def publish(self, gateway_id: str, camera_id: str, ref: FpMemoryRef) -> None:
        """Make `ref` the camera's desired `fp_memory` on its gateway."""


class LocalShadowBackend:
    """Shadow documents in a file (no broker): every call re-reads it, so two processes in turn see each other."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def get(self, thing: str, shadow: str) -> dict[str, Any] | None:
        try:
            return ShadowStore(self.path).get(thing, shadow)
        except ShadowError as exc:
            if exc.code == 404:
                return None
            raise

    def update(self, thing: str, shadow: str, document: dict[str, Any]) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            accepted, _documents, _delta = ShadowStore(self.path).update(thing, shadow, document)
        except ShadowError as exc:
            if exc.code == 409:
                raise ConflictError(str(exc)) from exc
            raise ValueError(f"shadow update rejected: {exc}") from exc
        return accepted


class ShadowRefPublisher:
    """Writes the reference into the gateway's named shadow. The backend is made on first use (connecting to
    a broker only when a memory actually changes) and closed after each publish."""

    def __init__(self, backend: Callable[[], ShadowBackend]) -> None:
        self._backend = backend

    def publish(self, gateway_id: str, camera_id: str, ref: FpMemoryRef) -> None:
        backend = self._backend()
        try:
            accepted = ConfigAdmin(backend).set(gateway_id, {"fp_memory": ref.model_dump(mode="json")},
                                                cameras=[camera_id])
        finally:
            close = getattr(backend, "close", None)
            if close is not None:
                close()
        log.info("fp memory reference sent to the gateway", extra={
            "gateway_id": gateway_id, "camera_id": camera_id, "fp_memory_version": ref.version,
            "shadow_version": accepted.get("version")})
