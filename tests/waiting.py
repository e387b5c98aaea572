"""Bounded waits in tests: return as soon as a condition holds, give up at a deadline (no fixed sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """True once `predicate()` is true, polling every `interval` s; its value at the deadline otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
