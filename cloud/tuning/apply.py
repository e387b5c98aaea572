"""`--apply`: a recommended threshold goes to the camera's gateway through its named shadow (ConfigAdmin),
never a refused or unchanged one. CameraConfig requires detect_threshold ≤ threshold: when the camera's
effective detect_threshold is above the new value, it is lowered to it in the same update."""

from __future__ import annotations

import logging
from typing import Any

from cloud.config_admin import ConfigAdmin, ShadowBackend
from cloud.tuning.threshold import TuningResult
from contracts import CameraConfig
from contracts.shadow_state import merge_state

log = logging.getLogger(__name__)


def effective_camera_config(document: dict[str, Any] | None, camera_id: str) -> dict[str, Any]:
    """What the camera runs with as far as the shadow tells: defaults < reported < desired."""
    state = (document or {}).get("state") or {}
    desired, reported = state.get("desired") or {}, state.get("reported") or {}
    config = merge_state(CameraConfig().model_dump(mode="json"), desired.get("defaults") or {})
    config = merge_state(config, (reported.get("cameras") or {}).get(camera_id) or {})
    return merge_state(config, (desired.get("cameras") or {}).get(camera_id) or {})


def threshold_patch(document: dict[str, Any] | None, camera_id: str, threshold: float) -> dict[str, Any]:
    patch: dict[str, Any] = {"threshold": threshold}
    if effective_camera_config(document, camera_id).get("detect_threshold", 0.0) > threshold:
        patch["detect_threshold"] = threshold
    return patch


def apply_recommendation(backend: ShadowBackend, thing: str, result: TuningResult) -> dict[str, Any]:
    """Write the recommended threshold to the shadow's desired state; returns the accepted document."""
    if not result.valid or result.chosen is None:
        raise ValueError(f"camera {result.camera_id}: nothing to apply ({result.status}): {result.message}")
    admin = ConfigAdmin(backend)
    patch = threshold_patch(backend.get(thing, admin.shadow), result.camera_id, result.chosen)
    accepted = admin.set(thing, patch, cameras=[result.camera_id])
    log.info("tuned threshold applied", extra={"thing": thing, "camera_id": result.camera_id,
                                               "threshold": result.chosen, "patch": patch,
                                               "shadow_version": accepted.get("version")})
    return accepted
