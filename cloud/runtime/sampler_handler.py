"""Lambda for the sampler's EventBridge schedule: the scheduled event's `time` is the end of the window.

The window is VIGIA_SAMPLE_WINDOW_HOURS (default 24 h) long. The run id comes from the window and the
policy, so EventBridge's retries of a failed invocation rewrite the same review set, never a second one.
A scheduled event without a usable `time` is a configuration error: logged, returned, not retried.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from cloud.sampler import SamplerSettings, Window, build_sampler, run_sampler

log = logging.getLogger(__name__)

_built: tuple[SamplerSettings, Any, Any, Any] | None = None


def _get() -> tuple[SamplerSettings, Any, Any, Any]:
    """Settings and stores, built once per container (cold start)."""
    global _built
    if _built is None:
        from cloud.runtime.lambda_handler import _setup_logging

        _setup_logging()
        settings = SamplerSettings()
        _built = (settings, *build_sampler(settings))
    return _built


def window_end(event: dict[str, Any]) -> datetime:
    """The scheduled event's time (ISO 8601, UTC), e.g. "2026-11-29T00:00:00Z"."""
    value = event.get("time") if isinstance(event, dict) else None
    if not isinstance(value, str):
        raise ValueError(f"scheduled event has no 'time' string (got {type(value).__name__})")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"scheduled event time {value!r} is not ISO 8601") from exc
    if when.tzinfo is None:
        raise ValueError(f"scheduled event time {value!r} has no time zone")
    return when


def run_scheduled(event: dict[str, Any], settings: SamplerSettings, events: Any, objects: Any, review: Any
                  ) -> dict[str, Any]:
    try:
        window = Window.ending(window_end(event), settings.sample_window_hours)
    except ValueError as exc:
        log.error("sampler: unusable scheduled event", extra={"error": str(exc), "event_id": event.get("id")
                                                              if isinstance(event, dict) else None})
        return {"status": "error", "error": str(exc)}
    result = run_sampler(events, objects, review, window, settings.policy())
    return {"status": "written" if result.run_id else "empty", **result.to_dict()}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    settings, events, objects, review = _get()
    return run_scheduled(event, settings, events, objects, review)
