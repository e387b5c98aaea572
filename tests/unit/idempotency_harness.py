"""Two deliveries of one candidate at the same moment, through the real pipeline (shared by the SQLite and the
DynamoDB idempotency tests)."""

from __future__ import annotations

import threading
from pathlib import Path

from cloud.pipeline import Outcome, Pipeline
from contracts import Candidate, Verdict
from tests.unit.cloud_factories import decide_by_candidate_score

# How long a verification waits for the other delivery to finish. Only reached when both deliveries verify
# (the defect under test): each then waits for the other, and the call count shows it.
GATE_TIMEOUT_S = 5.0


class GatedVerifier:
    """Stand-in verifier that counts its calls and holds each verification until another delivery has
    finished, so the second delivery always arrives while the first is mid-verification."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self.other_finished = threading.Event()

    def __call__(self, candidate: Candidate, clip_path: Path | None) -> Verdict:
        with self._lock:
            self.calls += 1
        self.other_finished.wait(GATE_TIMEOUT_S)
        return decide_by_candidate_score(candidate, clip_path)


def deliver_twice_at_once(pipeline: Pipeline, body: str, verifier: GatedVerifier) -> list[Outcome | Exception]:
    """Both deliveries start together (a barrier); each result is the Outcome or the exception it raised."""
    start = threading.Barrier(2)
    results: list[Outcome | Exception | None] = [None, None]

    def deliver(i: int) -> None:
        start.wait()
        try:
            results[i] = pipeline.handle(body)
        except Exception as exc:  # the runtime would leave the message for redelivery
            results[i] = exc
        finally:
            verifier.other_finished.set()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(r is not None for r in results), "a delivery never finished"
    return [r for r in results if r is not None]
