"""The running configuration of the gateway: applies shadow deltas safely and survives restarts.

Rules (DESIGN.md "bad input keeps the last good state"):
- a desired document may be partial: each camera's part is merged into what that camera runs with now
  (or into `defaults` for a camera not listed yet) and the result is validated as a whole CameraConfig;
- all-or-nothing per camera: a refused camera keeps its last good value, valid cameras still apply;
- refusals are kept in `errors` ({"cam1": "threshold: Input should be ..."}) for `reported`, and logged;
- the last good config is written atomically to a JSON file and reloaded on start.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contracts import CameraConfig, GatewayConfig
from contracts.shadow_state import merge_state

log = logging.getLogger(__name__)

_CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_CAMERAS = 64
Listener = Callable[[GatewayConfig, int], None]


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    version: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def format_validation_error(exc: ValidationError) -> str:
    """`threshold: Input should be less than or equal to 0.99` — field path first, pydantic's words after."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)



def project(value: Any, shape: Any) -> Any:
    """The parts of `value` at the paths present in `shape` (how `reported` mirrors `desired`)."""
    if isinstance(shape, Mapping) and isinstance(value, Mapping):
        return {k: project(value[k], s) for k, s in shape.items() if k in value}
    return value


class ConfigStore:
    """Thread-safe holder of the running GatewayConfig. `for_camera` is cheap (called per frame)."""

    def __init__(
        self,
        path: Path | str | None = None,
        known_cameras: Iterable[str] | None = None,
        initial: GatewayConfig | None = None,
    ) -> None:
        self.path = Path(path) if path else None
        self.known_cameras = frozenset(known_cameras) if known_cameras is not None else None
        self._lock = threading.RLock()
        self._config = initial or GatewayConfig()
        self._version = 0
        self._errors: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self._load()

    # --- read side --------------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Shadow version of the last desired document that applied (0: never configured remotely)."""
        return self._version

    @property
    def config(self) -> GatewayConfig:
        return self._config

    @property
    def errors(self) -> dict[str, str]:
        with self._lock:
            return dict(self._errors)

    def for_camera(self, camera_id: str) -> CameraConfig:
        return self._config.for_camera(camera_id)

    def add_listener(self, listener: Listener) -> None:
        """`listener(config, version)` after every change, outside the store's lock."""
        self._listeners.append(listener)

    def reported_state(self, desired_shape: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the gateway runs with, at the paths `desired` uses (keeps `reported` under 8 KB while
        making it match `desired` exactly where a value was applied, so the shadow's delta empties)."""
        with self._lock:
            running = self._config.model_dump(mode="json")
        shape: dict[str, Any] = {"schema_version": True, "cameras": {c: {} for c in running["cameras"]}}
        if desired_shape:
            shape = merge_state(shape, {k: v for k, v in desired_shape.items() if v is not None})
        out = project(running, shape)
        if isinstance(out.get("cameras"), Mapping):
            # an empty projection of a camera still says "I run this camera"; say which threshold
            for cam, value in out["cameras"].items():
                if value == {} and cam in running["cameras"]:
                    value["threshold"] = running["cameras"][cam]["threshold"]
        return out

    # --- write side -------------------------------------------------------------------------------------
    def apply(self, desired: Any, version: int | None = None) -> ApplyResult:
        """Apply a (partial) desired document. Never raises for bad input: refusals land in the result."""
        result = ApplyResult()
        if not isinstance(desired, Mapping):
            result.errors["_document"] = f"desired state must be an object, got {type(desired).__name__}"
            self._finish(result, None, version)
            return result
        with self._lock:
            defaults = self._config.defaults
            cameras = dict(self._config.cameras)
            for key, value in desired.items():
                if key == "schema_version":
                    if value not in (None, 1):
                        result.errors["schema_version"] = f"schema_version {value!r} is not supported (1)"
                elif key == "defaults":
                    new = self._merge_camera("defaults", defaults, value, result)
                    if new is not None:
                        defaults = new
                elif key == "cameras":
                    if not isinstance(value, Mapping):
                        result.errors["cameras"] = "cameras: must be an object of camera id -> settings"
                        continue
                    for cam, patch in value.items():
                        self._apply_camera(cameras, defaults, str(cam), patch, result)
                else:
                    result.errors[str(key)] = f"{key}: unknown field (expected defaults, cameras)"
            new_config = None
            if result.applied:
                new_config = GatewayConfig(defaults=defaults, cameras=cameras)
            self._finish(result, new_config, version)
        return result

    def _apply_camera(
        self, cameras: dict[str, CameraConfig], defaults: CameraConfig, cam: str, patch: Any,
        result: ApplyResult,
    ) -> None:
        if not _CAMERA_ID.match(cam):
            result.errors[cam[:64] or "_camera"] = f"camera id {cam!r} is not valid"
            return
        if self.known_cameras is not None and cam not in self.known_cameras:
            result.errors[cam] = f"unknown camera {cam!r}: not among this gateway's cameras"
            return
        if patch is None:  # null: drop the override, the camera follows `defaults` again
            cameras.pop(cam, None)
            result.applied.append(cam)
            return
        if cam not in cameras and len(cameras) >= MAX_CAMERAS:
            result.errors[cam] = f"too many cameras (at most {MAX_CAMERAS})"
            return
        new = self._merge_camera(cam, cameras.get(cam, defaults), patch, result)
        if new is not None:
            cameras[cam] = new

    @staticmethod
    def _merge_camera(key: str, base: CameraConfig, patch: Any, result: ApplyResult) -> CameraConfig | None:
        if not isinstance(patch, Mapping):
            result.errors[key] = f"{key}: must be an object of settings, got {type(patch).__name__}"
            return None
        try:
            new = CameraConfig.model_validate(merge_state(base.model_dump(mode="json"), patch))
        except ValidationError as exc:
            result.errors[key] = format_validation_error(exc)
            return None
        result.applied.append(key)
        return new

    def _finish(self, result: ApplyResult, new_config: GatewayConfig | None, version: int | None) -> None:
        with self._lock:
            for key in result.applied:
                self._errors.pop(key, None)
            self._errors.update(result.errors)
            if new_config is not None:
                self._config = new_config
                if version is not None:
                    self._version = version
            result.version = self._version
            config, current_version = self._config, self._version
            self._save()
        for key, message in result.errors.items():
            log.warning("config refused", extra={"key": key, "error": message, "shadow_version": version})
        if new_config is not None:
            log.info("config applied", extra={"applied": result.applied, "config_version": current_version})
            for listener in list(self._listeners):
                try:
                    listener(config, current_version)
                except Exception:
                    log.exception("config listener failed")

    # --- persistence ------------------------------------------------------------------------------------
    def _save(self) -> None:
        if self.path is None:
            return
        body = {"version": self._version, "config": self._config.model_dump(mode="json"), "errors": self._errors}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(body, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)  # atomic: a crash leaves the old file or the new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            body = json.loads(self.path.read_text())
            config = GatewayConfig.model_validate(body["config"])
            version = int(body.get("version", 0))
            errors = {str(k): str(v) for k, v in (body.get("errors") or {}).items()}
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            # keep the built-in defaults rather than die; keep the bad file for a human to look at
            bad = self.path.with_suffix(self.path.suffix + ".corrupt")
            os.replace(self.path, bad)
            log.error("stored config unreadable, starting from defaults",
                      extra={"path": str(self.path), "moved_to": str(bad), "error": str(exc)[:500]})
            return
        self._config, self._version, self._errors = config, version, errors
        log.info("stored config loaded", extra={"path": str(self.path), "config_version": version})
