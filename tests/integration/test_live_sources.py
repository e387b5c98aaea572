"""Live sources against a REAL RTSP server (GStreamer's, on loopback) serving real footage (vtest.avi, H.264).

The server is killed and restarted on its port, a camera that accepts TCP and never speaks and a closed
port stand in for cameras that do not answer, and a loopback proxy that stops moving bytes stands in for
a stalled stream. Every wait has a deadline that stops the source: a source that misbehaves ends the
iteration and fails an assertion instead of hanging the suite.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.sources import Frame, LiveSource, SourceGap
from tests.rtsp_server import RtspServer, free_port, make_h264_footage
from tests.tcp_proxy import PausableProxy, SilentListener

pytestmark = pytest.mark.integration

USER, PASSWORD = "admin", "s3cret-pw"
FAST = {"stall_timeout_s": 1.5, "open_timeout_s": 2.0, "backoff_min_s": 0.1, "backoff_max_s": 0.4}
DEADLINE_S = 25.0


@pytest.fixture
def footage(rtsp_footage: Path) -> Path:
    return rtsp_footage


@pytest.fixture
def rtsp(footage: Path) -> Iterator[RtspServer]:
    server = RtspServer(footage, user=USER, password=PASSWORD)
    server.start()
    yield server
    server.stop()


class Watched:
    """A LiveSource's items pulled one at a time, with a deadline that stops the source."""

    def __init__(self, source: LiveSource, deadline_s: float = DEADLINE_S) -> None:
        self.source = source
        self.stop = threading.Event()
        self._timer = threading.Timer(deadline_s, self.stop.set)
        self._timer.start()
        self._items = source.frames(self.stop)
        self.seen: list[Frame | SourceGap] = []

    def frames(self, count: int) -> list[Frame]:
        got: list[Frame] = []
        for item in self._items:
            self.seen.append(item)
            if isinstance(item, Frame):
                got.append(item)
                if len(got) == count:
                    break
        return got

    def until_gap(self) -> SourceGap | None:
        for item in self._items:
            self.seen.append(item)
            if isinstance(item, SourceGap):
                return item
        return None

    def wait_for(self, condition: Callable[[], bool]) -> bool:
        while not self.stop.is_set():
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def close(self) -> None:
        self._timer.cancel()
        self.stop.set()
        self.source.close()


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


def test_stream_that_stops_and_comes_back(rtsp: RtspServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent.sources")
    watched = Watched(LiveSource(rtsp.url, "door", sample_fps=5.0, **FAST))
    try:
        before = watched.frames(5)
        assert len(before) == 5
        assert watched.source.status.state == "connected"
        rtsp.kill()
        gap = watched.until_gap()
        assert gap is not None and gap.reason
        assert watched.wait_for(lambda: watched.source.status.state == "reconnecting")
        assert watched.source.status.last_error
        rtsp.start()
        after = watched.frames(5)
        assert len(after) == 5
        status = watched.source.status
        assert status.state == "connected"
        assert status.reconnects == 1
        assert status.frames >= 10
    finally:
        watched.close()
    frames = [item for item in watched.seen if isinstance(item, Frame)]
    stamps = [f.ts for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps)), stamps
    # The gap sits between the two connections' frames, and frames are real pictures of the footage.
    gap_at = next(i for i, item in enumerate(watched.seen) if isinstance(item, SourceGap))
    assert all(isinstance(x, Frame) for x in watched.seen[:gap_at])
    assert any(isinstance(x, Frame) for x in watched.seen[gap_at + 1:])
    assert frames[0].image.shape == (288, 384, 3) and frames[0].image.std() > 10
    assert all(abs(f.wall - time.time()) < 120 for f in frames)
    records = [r for r in caplog.records if r.name == "edge_agent.sources"]
    lost = [r for r in records if r.getMessage() == "camera source lost; reconnecting"]
    assert lost and lost[0].camera_id == "door" and lost[0].retry_in_s >= 0 and lost[0].reason
    assert sum(r.getMessage() == "camera source connected" for r in records) == 2
    assert watched.source.status.state == "stopped"
    assert PASSWORD not in log_text(caplog)
    assert PASSWORD not in watched.source.status.model_dump_json()
    assert "***@127.0.0.1" in watched.source.status.source


@pytest.mark.parametrize("camera", ["silent", "closed"])
def test_camera_that_never_answers(camera: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent.sources")
    listener = SilentListener() if camera == "silent" else None
    port = listener.port if listener else free_port()
    url = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{port}/cam"
    watched = Watched(LiveSource(url, "gate", sample_fps=5.0, **{**FAST, "open_timeout_s": 0.5}))
    try:
        # The first attempt gives up on its own and the source tries again: the open is bounded.
        if listener is not None:
            assert watched.wait_for(lambda: listener.accepted >= 2)
        assert watched.wait_for(lambda: watched.source.status.last_error is not None)
        status = watched.source.status
    finally:
        watched.close()
        if listener is not None:
            listener.close()
    assert status.state == "connecting"
    assert status.frames == 0 and status.reconnects == 0
    expected = "no answer within 0.5 s" if camera == "silent" else "Connection refused"
    assert expected in (status.last_error or "")
    text = log_text(caplog)
    assert "camera source unavailable; retrying" in text
    assert "corrupt" not in text and "corrupt" not in (status.last_error or "")
    assert PASSWORD not in text and PASSWORD not in status.model_dump_json()


def test_stalled_stream_is_detected_and_reconnected(rtsp: RtspServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent.sources")
    proxy = PausableProxy(rtsp.port)
    url = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}/cam"
    watched = Watched(LiveSource(url, "yard", sample_fps=5.0, **FAST))
    try:
        assert len(watched.frames(3)) == 3
        proxy.pause()  # the connection stays open, nothing moves: only the stall timeout can see it
        gap = watched.until_gap()
        assert gap is not None and "stalled" in gap.reason
        assert watched.wait_for(lambda: watched.source.status.state in ("stalled", "reconnecting"))
        proxy.resume()
        assert len(watched.frames(3)) == 3
        assert watched.source.status.reconnects >= 1
    finally:
        watched.close()
        proxy.close()
    stalled = [r for r in caplog.records if r.getMessage() == "camera source stalled; reconnecting"]
    assert stalled and stalled[0].camera_id == "yard" and "stalled" in stalled[0].reason
    assert PASSWORD not in log_text(caplog)


def test_http_source_reconnects_when_the_stream_ends(footage: Path, vtest: Path, tmp_path: Path) -> None:
    """An MKV over HTTP (a small loopback server): each response ends, the source reconnects."""
    make_h264_footage(vtest, tmp_path / "short.mkv", seconds=2.0, loops=1)
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/short.mkv"
    watched = Watched(LiveSource(url, "web", sample_fps=50.0, **FAST, queue_size=64))
    try:
        first = watched.frames(3)
        gap = watched.until_gap()
        second = watched.frames(3)
        status = watched.source.status
    finally:
        watched.close()
        server.shutdown()
        server.server_close()
    assert len(first) == 3 and len(second) == 3
    assert gap is not None and gap.reason == "the stream ended"
    assert second[0].ts > first[-1].ts
    assert status.reconnects >= 1


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
