"""CPU time of every thread of this process over a window, grouped by what the thread does (Linux /proc).

Why: on a 2-core gateway the agent's frame rate over the model's raw rate is bounded by inference CPU over
inference CPU plus everything else, and on a shared host one wall-clock ratio moves by ±0.07 from run to run.
The CPU each thread spends per frame is steadier, and says which part of the agent costs what.

Threads that end inside the window (a clip's decode thread, a segment writer) are caught by a sampler
that reads /proc every `interval_s`; what such a thread spends after its last sample is lost (at most
one interval of it). Elsewhere than Linux, `by_role` is empty.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

TASKS = Path("/proc/self/task")
INFERENCE_SHARE = 0.25  # a native thread with at least this share of the busiest one is an inference thread


def _thread_cpu_s() -> dict[int, float]:
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for entry in TASKS.iterdir() if TASKS.is_dir() else []:
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended between listing and reading
            continue
        out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def _role(python_name: str | None) -> str:
    if python_name is None:
        return "native"
    if python_name == "MainThread":
        return "camera"  # the benchmark calls process_clip on its main thread: that is the camera loop
    return python_name.split("-")[0]  # "decode-bench" -> decode, "segment-bench" -> segment


class ThreadCpu:
    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def sample(self) -> None:
        """Read every live thread's CPU and name now (the sampler thread calls this every interval)."""
        self._names.update({t.native_id: t.name for t in threading.enumerate() if t.native_id is not None})
        self._last.update(_thread_cpu_s())

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> ThreadCpu:
        self._base = _thread_cpu_s()
        self.sample()
        self._sampler = threading.Thread(target=self._run, name="thread-cpu-sampler", daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        self.sample()

    def by_role(self) -> dict[str, float]:
        """CPU seconds in the window per role: camera, decode, segment, ..., inference (OpenVINO's busy native
        threads) and native-other (OpenVINO's callback thread and other helpers)."""
        sampler = self._sampler.native_id if self._sampler is not None else None
        spent = {tid: cpu - self._base.get(tid, 0.0) for tid, cpu in self._last.items() if tid != sampler}
        native = {tid: cpu for tid, cpu in spent.items() if tid not in self._names}
        busiest = max(native.values(), default=0.0)
        roles: dict[str, float] = {}
        for tid, cpu in spent.items():
            if cpu <= 0:
                continue
            role = _role(self._names.get(tid))
            if role == "native":
                role = "inference" if cpu >= INFERENCE_SHARE * busiest else "native-other"
            roles[role] = roles.get(role, 0.0) + cpu
        return roles


def per_frame_ms(roles: dict[str, float], frames: int) -> dict[str, float]:
    return {role: round(cpu / max(frames, 1) * 1e3, 2) for role, cpu in sorted(roles.items(), key=lambda r: -r[1])}

