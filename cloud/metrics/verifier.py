"""The verifier's metrics, one function per thing that happens (the pipeline and runtimes call these)."""

from __future__ import annotations

from typing import Any

from cloud.metrics import metrics_for

_m = metrics_for("verifier")


def camera_dims(item: Any) -> dict[str, str]:
    """gateway_id/camera_id of a Candidate, Verdict or EventRecord."""
    return {"gateway_id": item.gateway_id, "camera_id": item.camera_id}


def received(candidate: Any) -> None:
    _m.count("CandidatesReceived", camera_dims(candidate), rollup=())


def verified(candidate: Any, verdict: Any, latency_ms: float, clip_fetched: bool) -> None:
    dims = camera_dims(candidate)
    if clip_fetched:
        _m.count("ClipsVerified", dims)
    _m.count("FramesVerified", dims, value=verdict.frames_examined)
    _m.count("Verdicts", {**dims, "decision": verdict.decision}, rollup=("decision",))
    _m.emit("VerifierLatency", latency_ms, "Milliseconds", dims, rollup=())


def duplicate(candidate: Any) -> None:
    _m.count("Duplicates", camera_dims(candidate))


def notified(record: Any) -> None:
    _m.count("Notifications", camera_dims(record), rollup=())


def dead_lettered(reason: str) -> None:
    _m.count("DeadLetters", {"reason": reason or "failed"})


def error() -> None:
    _m.count("VerifierErrors")


def queue_age(age_s: float) -> None:
    """Seconds from the message being sent to the verifier picking it up (negative clock skew → 0)."""
    _m.emit("QueueAge", max(0.0, age_s), "Seconds")
