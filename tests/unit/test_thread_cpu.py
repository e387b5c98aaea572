"""The benchmark's per-thread CPU accounting: a thread's CPU lands under its role, even when it ends early."""

import sys
import threading
import time

import pytest

from benchmarks.thread_cpu import ThreadCpu, per_frame_ms

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_finished_thread_is_counted_under_its_role() -> None:
    spun, release = threading.Event(), threading.Event()

    def work() -> None:
        _spin(0.4)
        spun.set()
        release.wait(5)

    with ThreadCpu(interval_s=60) as window:  # no periodic sample inside the test: one taken on purpose
        worker = threading.Thread(target=work, name="decode-check")
        worker.start()
        assert spun.wait(10)
        window.sample()  # what the sampler thread does every interval while threads live
        release.set()
        worker.join()  # the worker is gone before the window closes
    roles = window.by_role()
    assert 0.3 <= roles.get("decode", 0.0) <= 0.6
    assert roles.get("camera", 0.0) < 0.2  # the main thread only waited


def test_the_calling_thread_is_the_camera() -> None:
    with ThreadCpu(interval_s=0.05) as window:
        _spin(0.3)
    roles = window.by_role()
    assert 0.2 <= roles["camera"] <= 0.6
    assert "decode" not in roles


def test_per_frame_ms_orders_by_cost() -> None:
    assert list(per_frame_ms({"decode": 0.5, "camera": 1.0}, 100).items()) == [("camera", 10.0), ("decode", 5.0)]
