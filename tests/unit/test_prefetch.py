from __future__ import annotations

import threading
import time

import pytest

from edge_agent.prefetch import prefetched


def test_items_arrive_in_order_and_the_producer_runs_on_its_own_thread() -> None:
    threads: set[str] = set()

    def produce():
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(prefetched(produce(), depth=3, name="decode-x")) == list(range(50))
    assert threads == {"decode-x"}


def test_an_error_in_the_producer_reaches_the_consumer_after_the_items_before_it() -> None:
    def produce():
        yield 1
        yield 2
        raise ValueError("corrupt frame")

    got = []
    with pytest.raises(ValueError, match="corrupt frame"):
        for item in prefetched(produce()):
            got.append(item)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer() -> None:
    produced = []
    finished = threading.Event()

    def produce():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            finished.set()

    for item in prefetched(produce(), depth=2):
        if item == 5:
            break
    assert finished.wait(5)
    time.sleep(0.05)
    assert len(produced) < 20  # bounded read-ahead, not the whole source
