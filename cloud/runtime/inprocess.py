"""In-process cloud for the embedded default and the demo: `InProcessCloud(settings, verify).submit(c)`.

Direct call (no queue): the demo gets its verdict back at once. The runtime vouches for the sender the way the
IoT rule does in AWS mode: the identity a caller passes (an MQTT consumer: from the topic, `submit_mqtt`), or
else the gateway in this same process, i.e. the candidate's own gateway. Transient failures are retried
`settings.max_attempts` times, then dead-lettered (there is no SQS redrive here). Each submit records
its latency from submit to the event stored / notification written, for benchmarks (median, p95).
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import threading
import time
from dataclasses import dataclass

from cloud.metrics import verifier as verifier_metrics
from cloud.pipeline import Outcome, event_id_of
from cloud.ports import VerifyFn
from cloud.runtime.wiring import build_pipeline
from cloud.settings import CloudSettings
from cloud.trust import Identity, identity_from_topic, is_envelope
from contracts import Candidate, Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatencySample:
    event_id: str | None
    status: str
    decision: str | None
    submitted_at: float  # epoch s
    stored_at: float | None
    notified_at: float | None

    @property
    def latency_ms(self) -> float | None:
        """Submit → notification written (confirmed) or → event stored (otherwise)."""
        done = self.notified_at or self.stored_at
        return None if done is None else (done - self.submitted_at) * 1000.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


class InProcessCloud:
    def __init__(self, settings: CloudSettings | None = None, verify: VerifyFn | None = None,
                 *, retry_delay_s: float = 0.2) -> None:
        self.settings = settings or CloudSettings()
        self.pipeline = build_pipeline(self.settings, verify)
        self.retry_delay_s = retry_delay_s
        self.samples: list[LatencySample] = []
        self._lock = threading.Lock()  # one candidate at a time: the embedded stores are single-writer

    def submit(self, candidate: Candidate | bytes | str, *, identity: Identity | None = None) -> Verdict | None:
        """Verify, store and (if confirmed) notify. None means the candidate was dead-lettered."""
        return self.submit_outcome(candidate, identity=identity).verdict

    def submit_mqtt(self, topic: str, payload: bytes | str) -> Outcome:
        """A candidate received on `vigia/{thing}/cameras/{camera}/candidates`: the topic is the identity."""
        try:
            identity = identity_from_topic(topic)
        except Exception as exc:
            return self.pipeline.reject(payload, exc, time.time())
        return self.submit_outcome(payload, identity=identity)

    def submit_outcome(self, candidate: Candidate | bytes | str, *, identity: Identity | None = None) -> Outcome:
        submitted_at = time.time()
        if identity is None:
            identity = self._local_identity(candidate)
        with self._lock:
            outcome = self._with_retries(candidate, submitted_at, identity)
        self.samples.append(LatencySample(
            outcome.event_id, outcome.status, outcome.verdict.decision if outcome.verdict else None,
            submitted_at, outcome.stored_at, outcome.notified_at,
        ))
        return outcome

    @staticmethod
    def _local_identity(candidate: Candidate | bytes | str) -> Identity | None:
        """The gateway in this process: the candidate's own gateway (an envelope in the body speaks for itself;
        a body that is no candidate gets no identity and is refused by the pipeline as malformed)."""
        if isinstance(candidate, Candidate):
            return Identity(candidate.gateway_id)
        try:
            data = json.loads(candidate)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or is_envelope(data):
            return None
        gateway = data.get("gateway_id")
        return Identity(gateway) if isinstance(gateway, str) and gateway else None

    def _with_retries(self, candidate: Candidate | bytes | str, submitted_at: float,
                      identity: Identity | None) -> Outcome:
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return self.pipeline.handle(candidate, received_at=submitted_at, identity=identity)
            except Exception as exc:
                eid = candidate.event_id if isinstance(candidate, Candidate) else event_id_of(candidate)
                verifier_metrics.error()
                if attempt == attempts:
                    log.error("giving up after %d attempts", attempts, extra={"event_id": eid})
                    raw = candidate.model_dump_json() if isinstance(candidate, Candidate) else candidate
                    return self.pipeline.reject(raw, exc, submitted_at)
                log.warning("attempt %d failed: %s; retrying", attempt, exc, extra={"event_id": eid})
                time.sleep(self.retry_delay_s * attempt)
        raise AssertionError("unreachable")

    def latency_summary(self) -> dict[str, float | int]:
        """count, median_ms, p95_ms, max_ms over the submits that stored an event."""
        values = [s.latency_ms for s in self.samples if s.latency_ms is not None]
        if not values:
            return {"count": 0}
        return {"count": len(values), "median_ms": statistics.median(values),
                "p95_ms": percentile(values, 95), "max_ms": max(values)}
