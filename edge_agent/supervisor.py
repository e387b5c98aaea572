"""Runs every camera of the gateway, each on its own thread, and keeps them running.

A camera whose loop fails for any reason (a bug, a decoder crash) is logged and restarted after a
backoff; live sources reconnect on their own inside the loop. The supervisor ends when every camera
has finished (clip files without watching) or when it is stopped (a signal).
"""

from __future__ import annotations

import logging
import threading

from contracts import redact_uri
from edge_agent.agent import ClipReport, EdgeAgent
from edge_agent.sources import SourceError, is_live
from edge_agent.transport.base import Backoff

log = logging.getLogger("vigia.edge")

MAX_BATCH_RESTARTS = 3


class Supervisor:
    def __init__(self, agent: EdgeAgent, sources: dict[str, str], watch_s: float | None = None,
                 restart_min_s: float = 1.0, restart_max_s: float = 60.0) -> None:
        if not sources:
            raise ValueError("no camera to run: give --source or a gateway file with sources")
        self.agent = agent
        self.sources = dict(sources)
        self.watch_s = watch_s
        self.restart_min_s = restart_min_s
        self.restart_max_s = restart_max_s
        self.reports: dict[str, list[ClipReport]] = {cam: [] for cam in sources}
        self.crashes: dict[str, int] = dict.fromkeys(sources, 0)
        self.failed: set[str] = set()
        self._threads: list[threading.Thread] = []

    def start(self) -> Supervisor:
        for camera_id, source in self.sources.items():
            thread = threading.Thread(target=self._run_camera, args=(camera_id, source), name=f"camera-{camera_id}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("cameras started", extra={"cameras": {c: redact_uri(s) for c, s in self.sources.items()}})
        return self

    def _run_camera(self, camera_id: str, source: str) -> None:
        backoff = Backoff(self.restart_min_s, self.restart_max_s)
        # A service (stream, watched folder) restarts for ever; a batch over files gives up after a few
        # failures, or a deterministic bug would loop on the same clip without end.
        service = is_live(source) or self.watch_s is not None
        while not self.agent.stopping:
            if not service and self.crashes[camera_id] >= MAX_BATCH_RESTARTS:
                log.error("camera loop keeps failing; giving up on this camera", extra={
                    "camera_id": camera_id, "source": redact_uri(source), "restarts": self.crashes[camera_id]})
                self.failed.add(camera_id)
                return
            try:
                reports = self.agent.run_source(source, camera_id, watch_s=self.watch_s)
                self.reports[camera_id].extend(reports)
                return
            except SourceError as exc:  # the source itself is unusable (missing, empty): no restart helps
                log.error("camera source unusable; this camera stops", extra={
                    "camera_id": camera_id, "source": redact_uri(source), "error": redact_uri(str(exc))})
                self.failed.add(camera_id)
                return
            except Exception as exc:
                self.crashes[camera_id] += 1
                delay = backoff.next_delay()
                log.exception("camera loop failed; restarting it", extra={
                    "camera_id": camera_id, "source": redact_uri(source), "error": redact_uri(str(exc)),
                    "restarts": self.crashes[camera_id], "retry_in_s": round(delay, 2)})
                if self.agent._stop.wait(delay):
                    return

    def wait(self, timeout: float | None = None) -> bool:
        """True once every camera thread has ended."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        self.agent.stop()
