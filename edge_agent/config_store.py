"""The running configuration of the gateway: applies shadow documents safely and survives restarts.

Rules (DESIGN.md "bad input keeps the last good state"):
- a delta may be partial: each camera's part is merged into what that camera runs with now (or into
  `defaults` for a camera not listed yet) and the result is validated as a whole CameraConfig;
- a whole desired document (`full=True`, after a shadow GET) is the truth: the config is rebuilt from the
  gateway's base (its `--config` file, or the built-in defaults) plus desired, so a key deleted from
  desired (null) falls back to the default and a camera no longer listed follows `defaults` again;
- all-or-nothing per camera: a refused camera keeps its last good value, valid cameras still apply;
- refusals are kept in `errors` ({"cam1": "threshold: Input should be ..."}) for `reported`, and logged;
  a full document replaces them all (errors of keys no longer desired disappear), a delta settles those it
  restates (`ApplyResult.unsettled` names the others, so the caller can re-read the whole document);
- unknown fields, however many, make one error (`_unknown`), invalid camera ids another (`_invalid_cameras`);
- the last good config is written atomically to a JSON file and reloaded on start.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contracts import CameraConfig, GatewayConfig, validate_camera_id
from contracts.errors import describe_validation_error, truncate
from contracts.shadow_state import merge_state

log = logging.getLogger(__name__)

MAX_CAMERAS = 64
MAX_ERROR_CHARS = 600  # one refusal; ShadowSync shortens them further for `reported`
MAX_STORED_ERRORS = 100
DOCUMENT_KEYS = ("schema_version", "defaults", "cameras")
# Error keys that are not desired keys. They start with "_", which a camera id never does.
DOCUMENT_ERROR = "_document"  # the message as a whole: not an object, not JSON, too deep, too large
INTERNAL_ERROR = "_internal"  # a failure of ours while applying; the last good config is kept
UNKNOWN_ERROR = "_unknown"  # keys outside the schema, however many, in one error
INVALID_CAMERAS_ERROR = "_invalid_cameras"  # camera ids that break the id rule, in one error
_DOCUMENT_LEVEL = (DOCUMENT_ERROR, INTERNAL_ERROR)
Listener = Callable[[GatewayConfig, int], None]


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    version: int = 0
    # errors from earlier documents that this (partial) document neither restated nor cleared
    unsettled: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.errors


def _name_list(names: list[str], shown: int = 5) -> str:
    text = ", ".join(repr(truncate(n, 40)) for n in names[:shown])
    return text + (f" (+{len(names) - shown} more)" if len(names) > shown else "")


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
        self._base = initial or GatewayConfig()  # what a key deleted from desired falls back to
        self._config = self._base
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
        """What the gateway runs with, at the paths `desired` uses (keeps `reported` small while making it
        match `desired` exactly where a value was applied, so the shadow's delta empties)."""
        with self._lock:
            running = self._config.model_dump(mode="json")
        shape: dict[str, Any] = {"schema_version": True, "cameras": {c: {} for c in running["cameras"]}}
        if desired_shape:
            known = {k: v for k, v in desired_shape.items() if v is not None and k in DOCUMENT_KEYS}
            shape = merge_state(shape, known)
        out = project(running, shape)
        if isinstance(out.get("cameras"), Mapping):
            # an empty projection of a camera still says "I run this camera"; say which threshold
            for cam, value in out["cameras"].items():
                if value == {} and cam in running["cameras"]:
                    value["threshold"] = running["cameras"][cam]["threshold"]
        return out

    # --- write side -------------------------------------------------------------------------------------
    def apply(self, desired: Any, version: int | None = None, full: bool = False) -> ApplyResult:
        """Apply a desired document: a (partial) delta, or with `full` the whole desired state.

        Never raises for bad input: refusals land in the result (and in `errors`)."""
        result = ApplyResult()
        if not isinstance(desired, Mapping):
            result.errors[DOCUMENT_ERROR] = f"desired state must be an object, got {type(desired).__name__}"
            self._notify(result, self._commit(result, None, version, False, {DOCUMENT_ERROR}), None, version)
            return result
        covered: set[str] = set(_DOCUMENT_LEVEL)
        with self._lock:
            running = self._config
            start = self._base if full else running
            defaults = start.defaults
            cameras = dict(start.cameras)
            unknown = [str(k) for k in desired if k not in DOCUMENT_KEYS]
            if unknown:
                covered.add(UNKNOWN_ERROR)
                result.errors[UNKNOWN_ERROR] = (
                    f"{len(unknown)} unknown field{'s' if len(unknown) > 1 else ''} refused "
                    f"(expected {', '.join(DOCUMENT_KEYS)}): {_name_list(unknown)}"
                )
            if "schema_version" in desired:
                covered.add("schema_version")
                if desired["schema_version"] not in (None, 1):
                    value = truncate(repr(desired["schema_version"]), 40)
                    result.errors["schema_version"] = f"schema_version {value} is not supported (1)"
            if "defaults" in desired:  # before cameras: a camera new in this document starts from these
                covered.add("defaults")
                patch = desired["defaults"]
                if patch is None:
                    defaults = self._base.defaults
                    result.applied.append("defaults")
                else:
                    new = self._merge_camera("defaults", defaults, patch, result)
                    if new is not None:
                        defaults = new
                    elif full:
                        defaults = running.defaults  # refused: the last good defaults stay
            if "cameras" in desired:
                covered.update(("cameras", INVALID_CAMERAS_ERROR))
                if not self._apply_cameras(cameras, defaults, desired["cameras"], result, covered, full) and full:
                    cameras = dict(running.cameras)  # the whole section refused: every camera keeps its value
            new_config = None
            try:
                candidate = GatewayConfig(defaults=defaults, cameras=cameras)
            except ValidationError as exc:  # a rule of the whole document; keep what runs
                result.errors["cameras"] = truncate(describe_validation_error(exc), MAX_ERROR_CHARS)
            else:
                # a whole document re-read (every few minutes) that changes nothing wakes no listener
                if candidate != running or (result.applied and not full):
                    new_config = candidate
            before = self._commit(result, new_config, version, full, covered)
        if full and new_config is not None:
            for cam in sorted(set(running.cameras) - set(new_config.cameras)):
                log.info("camera override removed, camera follows its base", extra={"camera_id": cam})
        self._notify(result, before, new_config, version)
        return result

    def refuse(self, key: str, message: str, version: int | None = None) -> None:
        """Record a refusal found outside `apply` (a message that did not parse, a failure of ours)."""
        result = ApplyResult(errors={key: truncate(message, MAX_ERROR_CHARS)})
        self._notify(result, self._commit(result, None, version, False, {key}), None, version)

    def _apply_cameras(self, cameras: dict[str, CameraConfig], defaults: CameraConfig, value: Any,
                       result: ApplyResult, covered: set[str], full: bool) -> bool:
        """Merge each camera's part into `cameras`; False when the section is refused as a whole."""
        if not isinstance(value, Mapping):
            result.errors["cameras"] = "cameras: must be an object of camera id -> settings"
            return False
        listed = [str(cam) for cam, patch in value.items() if patch is not None]
        if len(listed) > MAX_CAMERAS:
            result.errors["cameras"] = f"cameras: {len(listed)} cameras listed, at most {MAX_CAMERAS}"
            return False
        invalid = []
        for cam, patch in value.items():
            cam = str(cam)
            try:
                validate_camera_id(cam)
            except ValueError:
                invalid.append(cam)
                continue
            covered.add(cam)
            if self.known_cameras is not None and cam not in self.known_cameras:
                result.errors[cam] = f"unknown camera {cam!r}: not among this gateway's cameras"
                continue
            if patch is None:  # null: drop the override, the camera follows its base again
                if cam in self._base.cameras:
                    cameras[cam] = self._base.cameras[cam]
                else:
                    cameras.pop(cam, None)
                result.applied.append(cam)
                continue
            if cam not in cameras and len(cameras) >= MAX_CAMERAS:
                result.errors[cam] = f"too many cameras (at most {MAX_CAMERAS})"
                continue
            base = cameras.get(cam, defaults)
            new = self._merge_camera(cam, base, patch, result)
            if new is not None:
                cameras[cam] = new
            elif full and cam in self._config.cameras:
                cameras[cam] = self._config.cameras[cam]  # refused: the camera keeps its last good value
        if invalid:
            result.errors[INVALID_CAMERAS_ERROR] = (
                f"{len(invalid)} camera id{'s' if len(invalid) > 1 else ''} not valid (1-64 letters, digits, "
                f"'_', '.' or '-', starting with a letter or digit, no '..'): {_name_list(invalid)}"
            )
        return True

    @staticmethod
    def _merge_camera(key: str, base: CameraConfig, patch: Any, result: ApplyResult) -> CameraConfig | None:
        if not isinstance(patch, Mapping):
            result.errors[key] = f"{key}: must be an object of settings, got {type(patch).__name__}"
            return None
        try:
            new = CameraConfig.model_validate(merge_state(base.model_dump(mode="json"), patch))
        except ValidationError as exc:
            result.errors[key] = truncate(describe_validation_error(exc), MAX_ERROR_CHARS)
            return None
        result.applied.append(key)
        return new

    def _commit(self, result: ApplyResult, new_config: GatewayConfig | None, version: int | None, full: bool,
                covered: set[str]) -> dict[str, str]:
        """Take the outcome in (errors, config, version, file); returns the errors held before."""
        with self._lock:
            before = dict(self._errors)
            if full:
                self._errors = dict(result.errors)
            else:
                for key in covered | set(result.applied):
                    self._errors.pop(key, None)
                self._errors.update(result.errors)
                result.unsettled = set(self._errors) - covered - set(result.applied)
            if new_config is not None:
                self._config = new_config
            if (new_config is not None or (full and result.applied)) and version is not None:
                self._version = version
            result.version = self._version
            self._save()
        return before

    def _notify(self, result: ApplyResult, before: dict[str, str], new_config: GatewayConfig | None,
                version: int | None) -> None:
        """Logs and listeners, outside the lock."""
        now = self.errors
        for key, message in result.errors.items():
            if before.get(key) != message:  # a full re-read restates known refusals: log each one once
                log.warning("config refused", extra={"key": key, "error": message, "shadow_version": version})
        for key in sorted(set(before) - set(now)):
            log.info("config refusal cleared", extra={"key": key, "shadow_version": version})
        if new_config is not None:
            log.info("config applied", extra={"applied": result.applied, "config_version": result.version})
            for listener in list(self._listeners):
                try:
                    listener(new_config, result.version)
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
            stored = list((body.get("errors") or {}).items())[:MAX_STORED_ERRORS]
            errors = {str(k)[:64]: truncate(str(v), MAX_ERROR_CHARS) for k, v in stored}
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            # keep the built-in defaults rather than die; keep the bad file for a human to look at
            bad = self.path.with_suffix(self.path.suffix + ".corrupt")
            os.replace(self.path, bad)
            log.error("stored config unreadable, starting from defaults",
                      extra={"path": str(self.path), "moved_to": str(bad), "error": str(exc)[:500]})
            return
        self._config, self._version, self._errors = config, version, errors
        log.info("stored config loaded", extra={"path": str(self.path), "config_version": version})
