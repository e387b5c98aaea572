"""Fixtures the integration tests share: a real RTSP server's footage (GStreamer, on loopback)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.rtsp_server import gstreamer_available, make_h264_footage


@pytest.fixture(scope="session")
def rtsp_footage(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vtest.avi as looped H.264 for the RTSP server; CI must have GStreamer (`make services` installs it)."""
    missing = gstreamer_available()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return make_h264_footage(vtest, tmp_path_factory.mktemp("rtsp") / "vtest-h264.mkv")
